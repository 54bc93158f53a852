"""Where a step runs: the executor seam. In-process first; another engine plugs in here."""

from __future__ import annotations

from typing import Any, Protocol

from mlops.plan.steps import StepCall
from mlops.run.runner import run_step


class Executor(Protocol):
    """Runs one step call and returns the config values it read (with, under runner.OUTPUT_DIGESTS, each
    output's digest as published); failures raise StepError."""

    name: str

    def run(self, call: StepCall) -> dict[str, Any]:
        """Run `call` to completion, its outputs published only when complete."""
        ...


class LocalExecutor:
    """Run each step in this process, as doit runs its actions."""

    name = "local"

    def run(self, call: StepCall) -> dict[str, Any]:
        """Run `call` here."""
        return run_step(call)
