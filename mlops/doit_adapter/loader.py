"""The `mlops` task loader plugin: doit's dodo.py loader, checking the command's task words first."""

from __future__ import annotations

import sys
from typing import Any

from doit.cmd_base import DodoTaskLoader

from mlops.common.errors import MlopsError
from mlops.doit_adapter import session

NAME = "mlops"
PLUGIN = "mlops.doit_adapter.loader:Loader"


class Loader(DodoTaskLoader):  # type: ignore[misc]
    """Load dodo.py as doit does; a task word naming no planned step fails in one line."""

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> Any:
        """Check `pos_args` (task names, as doit parsed them), then create the tasks."""
        current = session.current()
        if current is not None:
            try:
                current.accept(pos_args)
            except MlopsError as error:
                sys.exit(f"mlops: error: {error}")
        return super().load_tasks(cmd, pos_args)
