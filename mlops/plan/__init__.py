"""Pure planning: a resolved `Config` -> the `Step`s it asks for. No doit, no Hydra, nothing run."""

from mlops.plan.kinds import StepKind, step_kinds
from mlops.plan.steps import Step, StepCall, check_task_words, env_dir, plan

__all__ = ["Step", "StepCall", "StepKind", "check_task_words", "env_dir", "plan", "step_kinds"]
