"""The `mlops` state backend plugin: the state store, told which key ends a save of a task's record."""

from __future__ import annotations

from mlops.doit_adapter import internals
from mlops.state.store import StateDB

NAME = "mlops"
PLUGIN = "mlops.doit_adapter.backend:Backend"


class Backend(StateDB):
    """doit backend (`[tool.doit.plugins.backend]`): JSON snapshot plus a per-task journal."""

    desc = "JSON snapshot plus a per-task journal, safe against kills and concurrent runs"
    last_key = internals.LAST_SAVED_KEY
