"""doit's up-to-date check of a step, explaining itself one line per reason (for `doit why`)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mlops.common.errors import MlopsError
from mlops.common.names import DATE
from mlops.doit_adapter import internals, noop
from mlops.plan import Step
from mlops.run.uptodate import made_for, reasons, record_key
from mlops.state.digests import DigestCache
from mlops.state.failures import Failures


class StepCheck:
    """Up to date when the record of what made the output (for this date) still holds."""

    def __init__(self, step: Step, digests: DigestCache, redate: Callable[[Step, str], Step] | None = None) -> None:
        self.step = step
        self.digests = digests
        self.redate = redate
        self.failures = Failures.of(step.env_dir)

    def planned(self, date: str | None) -> Step:
        """Return the step as planned for `date`: `--date X` is the override `date=X` for this step."""
        if date is None or date == self.step.date or self.redate is None:
            return self.step
        return self.redate(self.step, date)

    def __repr__(self) -> str:
        return "the config values this step read, the files it consumed and its outputs as it wrote them"

    def date(self, task: Any) -> str | None:
        """Return the date this run asks for (--date, else the config's), None for an undated step."""
        if not self.step.kind.dated:
            return None
        options = getattr(task, "options", None) or {}
        return str(options.get("date", self.step.date))

    def check(self, task: Any, values: dict[str, Any]) -> bool:
        """Say whether the step is up to date as far as its record tells (doit checks file deps itself); a step
        the last no-op found up to date whose files are as they were then still is (see noop)."""
        if noop.still_up_to_date(self.step.task) and not self.failures.noted(self.step.task):
            return True
        return not self.explain(values, task)

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        """The check as doit calls an `uptodate` callable: with the task and its saved values."""
        return self.check(task, values)

    # doit reads the signature of an `uptodate` callable on every check to find that it takes (task, values):
    # given here, that costs an attribute lookup instead of inspecting the method each time.
    __signature__ = inspect.Signature([inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                       for name in ("task", "values")])

    def made(self, values: dict[str, Any], task: Any = None) -> dict[str, Any] | None:
        """Return the record of what made the output this run asks for, None if there is none."""
        return made_for(values, self.date(task))

    def explain(self, values: dict[str, Any], task: Any = None) -> list[str]:
        """Return one line per reason the step must run."""
        date = self.date(task)
        if date is not None and not DATE.match(date):
            return [f"--date {date} is not a date"]
        if task is not None and date is not None:
            internals.set_targets(task, list(self.step.outputs(date).values()))
        made = self.made(values, task)
        try:
            step = self.planned(date)
        except MlopsError as error:
            return [str(error)]  # the action fails with it, in one line
        failed = self.failures.noted(step.task).get(record_key(date))
        found = [f"failed last time ({failed}); it runs again"] if failed else []
        # doit compares an undated step's file deps itself; a dated step's record is per date.
        return found + reasons(step, date, made, self.digests, files=date is not None)
