"""doit task dicts: one task group per step kind, one subtask per pipeline, and print_config."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from mlops.common.errors import ConfigError
from mlops.common.names import check_date
from mlops.config import Config
from mlops.doit_adapter.action import StepAction
from mlops.doit_adapter.check import StepCheck
from mlops.doit_adapter.selection import Selection
from mlops.plan import Step, StepKind
from mlops.run import provenance
from mlops.run.executor import Executor
from mlops.run.outputs import clean_outputs
from mlops.state.digests import DigestCache

Creator = Callable[[], Any]
Redate = Callable[[Step, str], Step]
KIND_MARK = "mlops_step_kind"  # set on a step kind's task creator, naming the kind
STEP_MARK = "mlops_step"  # in a step task's meta


def kind_creator(kind: StepKind, steps: list[Step], digests: DigestCache, executor: Executor,
                 redate: Redate | None = None, swept: dict[str, list[Step]] | None = None,
                 selection: Selection | None = None) -> Creator:
    """Return the task creator of a step kind: its group, then one subtask per pipeline (per variant of a
    sweep, with the pipeline's subtask running its variants); only the steps `selection` takes."""
    def create() -> Iterator[dict[str, Any]]:
        yield {"basename": kind.name, "name": None, "doc": kind.doc}
        for step in selection.take(steps) if selection is not None else steps:
            made = step_task(step, digests, executor, redate)
            if swept and not step.variant:
                made["clean"] = []  # `doit clean` of a sweep removes only its variants
            yield made
        for task, variants in (swept or {}).items():
            if task.partition(":")[0] == kind.name:
                yield variants_task(task, variants)
    create.__doc__ = kind.doc
    setattr(create, KIND_MARK, kind.name)
    return create


def step_task(step: Step, digests: DigestCache, executor: Executor, redate: Redate | None = None) -> dict[str, Any]:
    """Return the doit subtask of one step: inputs in, outputs out, rerun when its record is stale (code too).

    `redate` plans a dated step for another day (its `--date` option)."""
    check = StepCheck(step, digests, redate)
    task: dict[str, Any] = {
        "name": step.name,
        "doc": f"{step.kind.name} {step.pipeline} with {step.section['fn']}" + (" for one date" if step.date else ""),
        "actions": [StepAction(step, check, executor)],
        "file_dep": list(step.inputs.values()),
        "targets": list(step.outputs(step.date).values()),
        "uptodate": [check],
        "clean": [CleanOutputs(step)],
        "meta": {STEP_MARK: True},
        # The steps it needs, in order (doit's own order of file_dep is a set's: it varies run to run).
        "task_dep": list(step.upstream),
    }
    if step.date is not None:
        # One output per date, each judged by the files it was made from (the check's record per date):
        # doit's file check keeps one state for the task and would judge every date by the last one made.
        task["file_dep"] = []
        task["params"] = [{"name": "date", "long": "date", "type": date_option, "default": step.date,
                           "help": "the day to run for, YYYY-MM-DD (default: the config's date, %(default)s)"}]
    return task


def variants_task(task: str, variants: list[Step]) -> dict[str, Any]:
    """Return the subtask a sweep's variants stand in for: it runs them (and `doit clean` removes theirs)."""
    return {
        "name": task.partition(":")[2],
        "doc": f"{task} for each variant of the sweep: " + ", ".join(step.variant or "" for step in variants),
        "actions": None,
        "task_dep": [step.task for step in variants],
        "clean": [CleanOutputs(step) for step in variants],
    }


class CleanOutputs:
    """A step's clean action, saying what it deletes (`doit clean --dry-run` prints it)."""

    def __init__(self, step: Step) -> None:
        self.step = step

    def __call__(self) -> None:
        clean_outputs(self.step)

    def __str__(self) -> str:
        names = (*self.step.kind.outputs.values(), provenance.FILE)
        files = ", ".join(f"{self.step.folder}/{file.format(date='*')}" for file in names)
        return f"<delete {files}"  # doit shows it without its first character, as for a function's repr


def takes_date(task: Any) -> bool:
    """Say whether a doit task has the `--date` option of a dated step."""
    return any(param.get("name") == "date" for param in task.params)


def date_value(word: str, rest: Iterator[str]) -> str | None:
    """Return the day of a `--date X` or `--date=X` word (X taken from `rest`), None for another word."""
    if word == "--date" or word.startswith("--date="):
        return word.partition("=")[2] or next(rest, "")
    return None


def date_option(value: str) -> str:
    """doit's parser of `--date`: a day that is not a date stops the command before anything runs."""
    try:
        return check_date(value, "--date")
    except ConfigError as error:
        sys.exit(f"mlops: error: {error}")


def print_config_creator(cfg: Config) -> Creator:
    """Return the creator of the print_config task."""
    def task_print_config() -> dict[str, Any]:
        """Print the resolved config as YAML, secrets masked (key=value words override it)."""
        return {
            "actions": [(_write_yaml, [cfg])],
            "uptodate": [False],
            "verbosity": 2,
            "meta": {"plain_output": True},
        }
    return task_print_config


def _write_yaml(cfg: Config) -> None:
    try:
        sys.stdout.write(cfg.to_yaml())
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (print_config | head): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
