"""A step's doit action: hold the task's lock, adopt another run's identical result, or run the step."""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed

from mlops.common.errors import MlopsError, StepError, StepFailed
from mlops.common.names import check_date, one_line
from mlops.doit_adapter import internals, session
from mlops.doit_adapter.backend import ADOPTED, ELAPSED, MADE_HERE, SAVED_BY_WORKER, WAITED, Backend
from mlops.doit_adapter.check import StepCheck
from mlops.plan import Step
from mlops.run import provenance, signals
from mlops.run.code import changed_files, code_state
from mlops.run.executor import Executor
from mlops.run.runner import OUTPUT_DIGESTS
from mlops.run.uptodate import consumed, made_record, made_records, reasons, record_key
from mlops.state.locks import TaskLock
from mlops.state.store import StateDB, read_state

LOCKS = ".locks"


class StepAction:
    """Run one step through an executor and keep the record of what made its output."""

    def __init__(self, step: Step, check: StepCheck, executor: Executor) -> None:
        self.step = step
        self.check = check
        self.executor = executor

    def run(self, task: Any) -> TaskFailed | None:
        """doit's action: a failure of ours becomes one line; a step's own exception keeps its traceback.

        Either way the failure is noted (the step runs again, `doit why` says why) and the records stay."""
        signals.checkpoint()  # a stop whose exception a finalizer swallowed: no step starts after it
        date, started = self.check.date(task), time.monotonic()
        try:
            self._run(task, date)
            task.values[ELAPSED] = time.monotonic() - started
        except MlopsError as error:
            self.check.failures.note(task.name, date, str(error))
            trace = f"{error.trace}\n" if isinstance(error, StepFailed) else ""
            return TaskFailed(f"{trace}{task.name}: {error}")
        except OSError as error:  # of ours, around the step (the step's own are StepFailed)
            line = f"{error.filename}: {error.strerror}" if error.filename else str(error)
            self.check.failures.note(task.name, date, line)
            return TaskFailed(f"{task.name}: {line}")
        except BaseException as error:  # an interruption: the step runs again
            self.check.failures.note(task.name, date, one_line(f"{type(error).__name__}: {error}", 300))
            raise
        self.check.failures.clear(task.name, date)
        return None

    def __call__(self, task: Any) -> TaskFailed | None:
        """The action as doit calls it, with its task."""
        return self.run(task)

    # doit reads an action's signature on every call to find which task values it takes: given here, that
    # costs an attribute lookup instead of inspecting the method each time.
    __signature__ = inspect.Signature([inspect.Parameter("task", inspect.Parameter.POSITIONAL_OR_KEYWORD)])

    def _run(self, task: Any, date: str | None) -> None:
        if date is not None:
            check_date(date, "--date")
        step, digests = self.check.planned(date), self.check.digests
        with locked(Path(step.env_dir) / LOCKS, task.name) as waited:
            # Under the task's lock, what is saved now stays the last record of this task until we save. A
            # record other than the one this run's check judged was saved by another run since this one
            # loaded the state (it may have finished the step before this run reached it, without a wait):
            # taken if it is exactly what this run would make. (Each record has an id of its making: a step remade
            # exactly as it was is still a record other than the one judged.)
            saved = records_now()  # the state as it is now, read at most once for this step
            records = saved(task.name)
            key = record_key(date)
            judged, fresh = made_records(internals.saved_values(task.name)).get(key), records.get(key)
            made = adopted(task.name, step, date, fresh, digests) if fresh is not None and fresh != judged else None
            outcome: dict[str, Any] = {ADOPTED: True} if made is not None else {WAITED: True} if waited else {}
            if made is None:
                made = self._made(step, date)
                outcome[MADE_HERE] = {"date": date}
                told_made(task.name, date, made, fresh, saved)
            # A dated step keeps one record per date: the other dates' records stay as they were.
            previous = records if date is not None else {}
            task.values["made"] = {**previous, record_key(date): made}
            backend = internals.state_backend()
            if isinstance(backend, Backend) and backend.save_values_now(task.name, task.values):
                task.values[SAVED_BY_WORKER] = True
            task.values.update(outcome)  # for this run's report only

    def _made(self, step: Step, date: str | None) -> dict[str, Any]:
        """Run the step and return the record of what made its outputs."""
        digests, fn = self.check.digests, step.section["fn"]
        missing = step.missing_inputs()
        if missing:
            raise StepError(f"{missing[0]}; the step did not run")
        files, code = consumed(step, digests), code_state(fn, step.env_dir)
        known = provenance.facts(step.task, fn, date, step.inputs, files, code, self.executor.name, step.variant)
        reads = self.executor.run(replace(step.call(date), provenance=known))
        published = reads.pop(OUTPUT_DIGESTS, {})
        unchanged(files, consumed(step, digests), changed_files(code, fn))
        return made_record(reads, files, code, step.outputs(date).values(), digests, published)


def told_made(task_name: str, date: str | None, made: dict[str, Any], replaced: dict[str, Any] | None,
              saved: Callable[[str], dict[str, Any]]) -> None:
    """Tell the listeners of `session.MADE` of a result just made, before its record is saved: where the record
    goes in the state (its files, and the keys to its id) and which process saves it."""
    backend = internals.state_backend()
    if not session.MADE or not isinstance(backend, StateDB):
        return
    where = {"files": [os.path.abspath(backend.name), os.path.abspath(backend.journal)],
             "path": [task_name, internals.VALUES_KEY, "made", record_key(date), "id"]}
    previous = replaced.get("id") if isinstance(replaced, dict) else None
    for listener in session.MADE:
        listener(task_name, date, made, previous, where, backend.owner,
                 lambda task: saved(task).get(record_key(None)))


def unchanged(before: dict[str, str], after: dict[str, str], code: list[str]) -> None:
    """Fail if a file the step consumed, or code this run loaded, changed since it was read: the output
    may come from either content."""
    for path, digest in before.items():
        if after.get(path) != digest:
            raise StepError(f"{path} changed while the step ran; it will run again on the new content")
    if code:
        raise StepError(f"{code[0]} changed after this run loaded its code; it will run again on the new code")


@contextmanager
def locked(folder: Path, task_name: str) -> Iterator[bool]:
    """Hold the task's lock while it runs, and on until doit has saved its record (where possible);
    say whether another run held it first."""
    lock = TaskLock(folder, task_name)
    waited = lock.acquire()
    backend = internals.state_backend()
    try:
        yield waited
    finally:
        # Released after the save, another run waiting for this task finds its record when it wakes.
        if not (isinstance(backend, StateDB) and backend.hold_until_saved(task_name, lock.release)):
            lock.release()


def records_now() -> Callable[[str], dict[str, Any]]:
    """Return a function giving a task's saved records by date, as the state holds them now: read from disk (once,
    here) when another run has written it since this one loaded it. Only records of the shape written here."""
    backend = internals.state_backend()
    if isinstance(backend, StateDB) and backend.changed_by_others():
        state = read_state(backend.name, backend.journal)
        return lambda task: made_records((state.get(task) or {}).get(internals.VALUES_KEY) or {})
    return lambda task: made_records(internals.saved_values(task))


def adopted(task_name: str, step: Step, date: str | None, made: dict[str, Any],
            digests: Any) -> dict[str, Any] | None:
    """Return the record another run saved meanwhile, if it is exactly what this run would make."""
    different = reasons(step, date, made, digests, files=True)
    if different:
        print(f"mlops: {task_name} was made by another run meanwhile, but not as this run would make it "
              f"({different[0]}); this run makes it again, replacing that output", file=sys.stderr)
        return None
    if not all(os.path.exists(path) for path in step.outputs(date).values()):
        return None
    return dict(made)
