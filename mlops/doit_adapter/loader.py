"""The `mlops` task loader plugin: doit's dodo.py loader, checking the command's task words first."""

from __future__ import annotations

import gc
import signal
import sys
from collections.abc import Iterable
from typing import Any

from doit.cmd_base import DodoTaskLoader

from mlops.common.errors import ConfigError, MlopsError
from mlops.doit_adapter import session
from mlops.doit_adapter.tasks import KIND_MARK

NAME = "mlops"
PRINTING = frozenset({"list", "why", "dumpdb", "info"})  # commands that only print (no step, no network)
PLUGIN = "mlops.doit_adapter.loader:Loader"


class Loader(DodoTaskLoader):  # type: ignore[misc]
    """Load dodo.py as doit does; a task word naming no planned step fails in one line."""

    def setup(self, opt_values: Any) -> None:
        """Import dodo.py, as doit does, telling it that this loader reads it."""
        session.LOADER_ACTIVE.append(True)
        super().setup(opt_values)

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> Any:
        """Check `pos_args` (task names, as doit parsed them), then create the tasks."""
        if getattr(cmd, "name", "") in PRINTING:
            # Like any Unix filter: end quietly when the reader of the output goes away (doit list | head).
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        current = session.current()
        if current is not None:
            try:
                check_kind_names(current.kinds, self.cmd_names, self.namespace)
                current.accept(pos_args)
            except MlopsError as error:
                sys.exit(f"mlops: error: {error}")
        tasks = super().load_tasks(cmd, pos_args)
        # The config, the plan and the tasks live until the command ends: keep the cyclic garbage
        # collector from rescanning them at every collection while the steps run or are checked.
        gc.freeze()
        return tasks


def check_kind_names(kinds: Iterable[str], commands: Iterable[str], namespace: dict[str, Any]) -> None:
    """Fail on a step kind named like a doit command or like another task of dodo.py."""
    for name in kinds:
        if name in commands:
            raise ConfigError(f"steps.{name}: '{name}' is a doit command; give the step kind another name")
        if getattr(namespace.get(f"task_{name}"), KIND_MARK, None) != name:
            raise ConfigError(f"steps.{name}: dodo.py already has a task '{name}'; give the step kind another name")
