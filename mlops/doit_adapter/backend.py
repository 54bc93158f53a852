"""The `mlops` state backend plugin: the state store, told which key ends a save of a task's record."""

from __future__ import annotations

import os
from typing import Any

from mlops.doit_adapter import internals, session
from mlops.run.uptodate import made_records, record_key
from mlops.state.store import StateDB

NAME = "mlops"
PLUGIN = "mlops.doit_adapter.backend:Backend"


class Backend(StateDB):
    """doit backend (`[tool.doit.plugins.backend]`): JSON snapshot plus a per-task journal; once the record
    of a step this run made is saved, the listeners of `session.SAVED` hear of it (experiment tracking)."""

    desc = "JSON snapshot plus a per-task journal, safe against kills and concurrent runs"
    last_key = internals.LAST_SAVED_KEY

    def __init__(self, name: str, codec: Any, **options: Any) -> None:
        super().__init__(name, codec, **options)
        self._made_here: dict[str, Any] = {}  # steps run here whose record is being saved: their date

    def save_values_now(self, task_id: str, values: dict[str, Any]) -> bool:
        """In a worker process of `doit -n`, journal a task's values before its lock is released.

        doit saves them later, in the main process, when another run may already have saved newer
        records of the task (another date); that later save is then left out of the journal (`set`).
        Return False in the main process, where doit's own save comes while the lock is held.
        """
        if os.getpid() == self._owner:
            return False
        self._append({"set": task_id, "values": {internals.VALUES_KEY: values}})
        return True

    def remove(self, task_id: str) -> None:
        """See `_remove`; a swept step's stand-in has no record: the record under its name is the step's."""
        if not _stand_in(task_id):
            self._remove(task_id)

    def _remove(self, task_id: str) -> None:
        """doit removes a task's record when it fails (or cannot start, an input missing) and on `doit forget`.

        A failed run published nothing: within `doit run` the record still describes the outputs and
        stays; the failure, noted by the step's action, makes the step run again.
        """
        if session.COMMAND and session.COMMAND[-1] == "run":
            self.keep(task_id)
        else:
            super().remove(task_id)

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        """Keep doit's value, without what only this run needs to know; a task's values saved by its worker
        already are not journaled again; a swept step's stand-in saves nothing over the step's record."""
        if _stand_in(task_id):
            return
        if dependency == internals.VALUES_KEY and isinstance(value, dict):
            kept = {key: item for key, item in value.items() if key not in TRANSIENT}
            if MADE_HERE in value:
                self._made_here[task_id] = value[MADE_HERE]
            if value.get(SAVED_BY_WORKER):
                self._db.setdefault(task_id, {})[dependency] = kept
                return
            value = kept
        super().set(task_id, dependency, value)
        if dependency == self.last_key and task_id in self._made_here:
            date = self._made_here.pop(task_id).get("date")
            record = made_records(self.get(task_id, internals.VALUES_KEY)).get(record_key(date)) or {}
            for listener in session.SAVED:
                listener(task_id, date, record.get("id"))


def _stand_in(task_id: str) -> bool:
    """Say whether a task is the stand-in of a swept step, which runs the sweep's variants in its name."""
    current = session.current()
    return current is not None and task_id in current.swept


# In a task's values, what its action tells this run's main process, never saved:
SAVED_BY_WORKER = "saved_by_worker"  # its worker journaled the values already (see save_values_now)
ADOPTED = "adopted_from_another_run"  # the step was not run: another run's identical result was taken
WAITED = "waited_for_another_run"  # the step ran after another run of it finished
MADE_HERE = "made_by_this_run"  # the step ran here: {"date": its date or None}
ELAPSED = "seconds_taken"  # how long the action took (its record's save, and what follows it, not counted)
TRANSIENT = frozenset({SAVED_BY_WORKER, ADOPTED, WAITED, MADE_HERE, ELAPSED})
