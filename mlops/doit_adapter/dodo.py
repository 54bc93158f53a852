"""What dodo.py needs: DOIT_CONFIG and the built-in task creators, and `config_task` for a project's own tasks."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.common.errors import MlopsError
from mlops.common.files import project_toml
from mlops.config import Config
from mlops.doit_adapter import backend, loader, session
from mlops.doit_adapter.checker import checker_for
from mlops.doit_adapter.reporter import Reporter
from mlops.doit_adapter.session import STATE_FILE, Invocation, invocation
from mlops.doit_adapter.tasks import kind_creator, print_config_creator
from mlops.integrations.cluster import ClusterSettings, DaskExecutor
from mlops.integrations.tracking import Checked, Tracker
from mlops.integrations.tracking_settings import Settings
from mlops.run import signals
from mlops.run.executor import Executor, LocalExecutor


def dodo(dodo_file: str | Path) -> dict[str, Any]:
    """Return DOIT_CONFIG and every built-in task creator; exit with one line on a config error."""
    root = Path(dodo_file).resolve().parent
    if _loader_active(root) and not session.LOADER_ACTIVE:
        # doit reads its plugins from the pyproject.toml of the folder it starts in (-f, -k, a subfolder).
        sys.exit(f"mlops: error: doit was started outside the project folder {root.name}/, so it did not read "
                 f"the project's settings from its pyproject.toml; run it there: cd {_relative(root)} && doit ...")
    try:
        started = invocation(root)
        if not _loader_active(root):
            started.accept([])  # no loader of ours will check the task words
        executor = tracked(started, engine(started))
        if started.variants:  # a sweep's run ends its report with the table of its variants
            from mlops.doit_adapter.sweep import ranking, table  # only a sweep needs it

            ranking(started.config.values)
            session.REPORTED.append(lambda reached: table(started, reached))
    except MlopsError as error:
        sys.exit(f"mlops: error: {error}")
    signals.install()
    namespace: dict[str, Any] = {"DOIT_CONFIG": doit_config(started)}
    for kind in started.kinds.values():
        steps = [step for step in started.steps if step.kind is kind]
        namespace[f"task_{kind.name}"] = kind_creator(kind, steps, started.digests, executor, started.for_date,
                                                      started.swept, started.selection)
    namespace["task_print_config"] = print_config_creator(started.config)
    return namespace


def engine(started: Invocation) -> Executor:
    """Return where steps run: here (executor: local) or on a Dask cluster (executor: dask)."""
    settings = ClusterSettings.of(started.config.values)
    if settings.executor == "dask":
        return DaskExecutor(settings, started.config.root, started.env_dir)
    return LocalExecutor()


def tracked(started: Invocation, executor: Executor) -> Executor:
    """Return the executor, checking tracking before each step when it is on; write each result's event for
    the logger, and say in the run's report what waits to be logged."""
    settings = Settings.of(started.config.values)
    if not settings.use:
        return executor
    pipelines = started.config.values.get("pipelines")
    tracker = Tracker(settings, str(started.config.values.get("env")), started.env_dir,
                      {step.task: step for step in started.steps}, pipelines if isinstance(pipelines, dict) else {},
                      {name for name, kind in started.kinds.items() if kind.dated})
    session.MADE.append(tracker.made)
    session.SAVED.append(tracker.saved)
    session.REPORTED.append(tracker.finish)
    return Checked(executor, tracker)


def doit_config(started: Invocation) -> dict[str, Any]:
    """Return doit's settings: every step kind by default, state kept per env option, fast file checks."""
    root = started.config.root
    return {
        "default_tasks": list(started.kinds),
        "dep_file": str(started.env_dir / STATE_FILE),
        "backend": backend.NAME if _registered(root, "backend", backend.NAME, backend.PLUGIN) else "json",
        "check_file_uptodate": checker_for(started.digests),
        "reporter": Reporter,
        # On a Dask cluster, doit's parallel work (-n N) is waiting on N steps at once: threads do that.
        "par_type": "thread" if ClusterSettings.of(started.config.values).executor == "dask" else "process",
    }


def _registered(root: Path, category: str, name: str, plugin: str) -> bool:
    plugins = project_toml(root).get("tool", {}).get("doit", {}).get("plugins", {})
    return bool(plugins.get(category, {}).get(name) == plugin)


def _relative(root: Path) -> str:
    """Return the project folder as the user can reach it from where doit was started."""
    started = Path(os.environ.get("PWD") or root)
    return os.path.relpath(root, started) if started.is_absolute() else str(root)


def _loader_active(root: Path) -> bool:
    chosen = project_toml(root).get("tool", {}).get("doit", {}).get("loader")
    return chosen == loader.NAME and _registered(root, "loader", loader.NAME, loader.PLUGIN)


@dataclass(frozen=True)
class TaskContext:
    """What a project's own task sees: the one config of this command, and the steps' output paths."""

    config: Config
    env_dir: Path
    invocation: Invocation

    def outputs(self, kind: str) -> dict[str, dict[str, str]]:
        """Return, by pipeline, the output paths of its `kind` step."""
        return self.invocation.outputs(kind)


def config_task(creator: Callable[[TaskContext], Any]) -> Callable[[], Any]:
    """Make a doit task creator of `creator(ctx)`: it receives the config composed once for this command."""
    root = Path(inspect.getfile(creator)).resolve().parent

    def create() -> Any:
        started = invocation(root)
        return creator(TaskContext(started.config, started.env_dir, started))

    create.__name__, create.__qualname__ = creator.__name__, creator.__qualname__
    create.__doc__, create.__module__ = creator.__doc__, creator.__module__
    return create
