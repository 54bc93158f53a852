"""One invocation: the command line read once, the config loaded once, the plan made once."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.common import secrets
from mlops.common.errors import ConfigError
from mlops.config import CommandLine, Config, keep, load
from mlops.config.sweeps import Variant, refuse_secret_values, split_sweeps
from mlops.config.words import refuse_bare_deletions
from mlops.doit_adapter import internals
from mlops.doit_adapter.selection import Selection
from mlops.integrations import outbox
from mlops.plan import Step, StepKind, check_task_words, env_dir, plan, step_kinds
from mlops.plan.variants import SweepPlan, with_variants
from mlops.state.digests import DigestCache
from mlops.state.store import check_folder

DIGESTS_FILE = ".digests.json"
STATE_FILE = ".doit-state.json"
STATE_FOLDERS = (".failed", ".locks", ".noop", outbox.FOLDER)
STATE_FILES = (STATE_FILE, f"{STATE_FILE}.journal", f"{STATE_FILE}.lock", DIGESTS_FILE)


@dataclass(frozen=True)
class Invocation:
    """What one doit command works on: its overrides, the resolved config and the steps it plans."""

    command_line: CommandLine
    config: Config
    kinds: dict[str, StepKind]
    steps: list[Step]
    env_dir: Path
    digests: DigestCache
    variants: list[Variant] = field(default_factory=list)  # of a sweep on the command line
    swept: dict[str, list[Step]] = field(default_factory=dict)  # a swept step's task: its variants' steps
    uses: dict[str, list[Step]] = field(default_factory=dict)  # a sweep's variant: the swept steps it uses
    by_date: dict[str, dict[str, Step]] = field(default_factory=dict)  # the plan for each --date asked
    selection: Selection = field(init=False)  # the steps this command makes tasks of

    def __post_init__(self) -> None:
        object.__setattr__(self, "selection", Selection(self.steps))

    def outputs(self, kind: str) -> dict[str, dict[str, str]]:
        """Return, by pipeline, the output paths of its `kind` step (the config's date for a dated kind)."""
        return {step.pipeline: step.outputs(step.date) for step in self.steps if step.kind.name == kind}

    def for_date(self, step: Step, date: str) -> Step:
        """Return `step` planned from the config composed with `date=<date>`: `--date X` is `date=X`."""
        if date == step.date:
            return step
        if date not in self.by_date:
            self.by_date[date] = {planned.task: planned for planned in self._plan((f"date={date}",)).steps}
        return self.by_date[date][step.task]

    def _plan(self, extra: tuple[str, ...] = ()) -> SweepPlan:
        """Plan the command line's config with `extra` overrides, each variant of its sweep too."""
        return planned(self.config.root, CommandLine((*self.command_line.overrides, *extra)), self.kinds,
                       self.variants)

    def accept(self, task_words: Iterable[str]) -> None:
        """Check the command's task words against the plan; then keep the config and make the env folder."""
        self.check(task_words)
        self.settle()

    def check(self, task_words: Iterable[str]) -> None:
        """Check the command's task words against the plan (ConfigError), writing nothing."""
        words = list(task_words)
        refuse_bare_deletions(words)
        check_task_words(words, self.kinds, self.steps, self.swept)

    def settle(self) -> None:
        """Keep the config (the command line proved valid) and make the folder of outputs and state."""
        keep(self.config)
        check_folder(self.env_dir, STATE_FILES, STATE_FOLDERS)


# told of each result made here before its record is saved: task, date, record, the id of the record it
# replaces, where its record is saved (state files, keys to its id), the process that saves it, and a function
# giving an undated task's saved record now
MADE: list[Callable[[str, str | None, dict[str, Any], str | None, dict[str, Any], int, Callable[[str], Any]],
                    None]] = []
SAVED: list[Callable[[str, str | None, str | None], None]] = []  # told of each result's record once saved: its id
# lines for the end of the run's report, given the tasks the run reached ("": nothing to say)
REPORTED: list[Callable[[set[str]], str]] = []
LOADER_ACTIVE: list[bool] = []  # not empty once our task loader imports dodo.py in this process
COMMAND: list[str] = []  # the doit command this process runs (run, list, why, forget...), once tasks load
_started: list[Invocation] = []  # the invocation dodo.py started in this process, for the task loader


@functools.cache
def invocation(root: Path) -> Invocation:
    """Return this process's invocation for the project at `root` (ConfigError on bad input)."""
    secrets.keep_key_in(root / ".mlops")
    command_line, variants = split_sweeps(CommandLine.from_words(internals.command_line_words()))
    cfg = load(root, command_line)
    kinds = step_kinds(cfg.values)
    sweep = planned(root, command_line, kinds, variants, cfg)
    base = env_dir(cfg)
    started = Invocation(command_line, cfg, kinds, sweep.steps, base, DigestCache(base / DIGESTS_FILE), variants,
                         sweep.swept, sweep.uses)
    _started.append(started)
    return started


def planned(root: Path, command_line: CommandLine, kinds: dict[str, StepKind], variants: list[Variant],
            cfg: Config | None = None) -> SweepPlan:
    """Plan the steps of a command line's config; with a sweep, each variant's steps its values change."""
    steps = plan(cfg or load(root, command_line), kinds)
    if not variants:
        return SweepPlan(steps, {}, {})
    refuse_secret_values(variants)  # the config is read: the secrets it holds are known
    plans = [(variant, plan(load(root, CommandLine((*command_line.overrides, *variant.overrides))), kinds))
             for variant in variants]
    sweep = with_variants(steps, plans)
    if not sweep.swept:
        keys = ", ".join(dict.fromkeys(override.partition("=")[0].lstrip("+") for override in variants[0].overrides))
        raise ConfigError(f"{keys}: the sweep changes no step's config, so it has nothing to vary; sweep a key "
                          "some step reads (pipelines.<name>.<step>.<key>, or a value one interpolates)")
    return sweep


def current() -> Invocation | None:
    """Return the invocation dodo.py started in this process, if any."""
    return _started[-1] if _started else None
