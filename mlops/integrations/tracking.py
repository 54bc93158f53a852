"""Experiment tracking, as a command sees it: check that it can work, and write each result's event.

Before the first step runs, `Tracker.ready()` checks that MLflow is installed (else one line, and no step
runs) and that its store or server answers (else one line, and steps run: their events wait). When a step has
made its outputs, `Tracker.made()` writes its event to the env's outbox (`integrations.outbox`), and
`Tracker.saved()` marks it once its record is saved. At the end, `Tracker.finish()` starts a logger process
(`integrations.logger`) that sends what waits, and says so in the run's report. The command never imports
MLflow.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.common.files import parse_json
from mlops.integrations import outbox
from mlops.integrations.tracking_settings import Settings, StoreUnavailable, ready
from mlops.plan import Step
from mlops.plan.steps import StepCall
from mlops.run.executor import Executor

PARAM_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")  # what MLflow refuses in a parameter's name
MAX_KEY = 250  # characters MLflow allows in a parameter's or metric's name
LOGGER = "mlops.integrations.logger"
ENV_URI, ENV_EXPERIMENT, ENV_TOKEN = "MLOPS_LOGGER_URI", "MLOPS_LOGGER_EXPERIMENT", "MLOPS_LOGGER_TOKEN"


class Tracker:
    """Writes the events of the steps this command runs; starts the logger that sends them."""

    def __init__(self, settings: Settings, env: str, env_dir: Path, steps: dict[str, Step],
                 pipelines: dict[str, Any], dated: set[str]) -> None:
        self.settings = settings
        self.folder = outbox.folder_of(env_dir)
        self.steps = steps
        self.writer = outbox.Writer(steps, env, pipelines, dated)
        self.saved_here = 0  # results this command made and saved
        self._checked = False

    def ready(self) -> None:
        """Check, once per process, that tracking can work before a step runs: TrackingError if MLflow is
        missing; one line if its store or server cannot be used now (the events wait for it)."""
        if self._checked:
            return
        self._checked = True
        try:
            ready(self.settings)
        except StoreUnavailable as error:
            print(f"mlops: tracking: {error}; steps run, and their results wait in {self._shown_folder()} "
                  "until `doit tracking` logs them", file=sys.stderr)

    def made(self, task: str, date: str | None, made: dict[str, Any], previous: str | None,
             state: dict[str, Any], owner: int, record_of: Callable[[str], Any]) -> None:
        """Write the event of a result this command made, before its record is saved (`record_of(task)`: the
        saved record of an undated step now)."""
        step = self.steps.get(task)
        if step is not None:
            consistent = self.writer.consistent(step, made, record_of)
            self.writer.write(step, date, made, previous, state, owner, consistent)

    def saved(self, task: str, date: str | None, record_id: str | None) -> None:
        """Mark a result's event once its record is saved."""
        step = self.steps.get(task)
        if step is not None and record_id:
            outbox.saved(step.env_dir, record_id)
            self.saved_here += 1

    def finish(self, reached: set[str]) -> str:
        """Start a logger for the results waiting in the outbox; return the report's line on this command's."""
        if not self.saved_here and not outbox.count(self.folder):
            return ""
        if self.settings.logger:
            start_logger(self.folder, self.settings)
        if not self.saved_here:
            return ""
        count = f"{self.saved_here} result{'s' if self.saved_here != 1 else ''}"
        where = f"tracking: {count} to log to {self.settings.shown_uri} (experiment {self.settings.experiment})"
        if self.settings.logger:
            return f"{where}, sent by a logger in the background (`doit tracking` shows and sends what waits)"
        return f"{where}: `doit tracking` shows and sends what waits"

    def _shown_folder(self) -> str:
        try:
            return os.path.relpath(self.folder)
        except ValueError:
            return str(self.folder)


def start_logger(folder: Path, settings: Settings) -> None:
    """Start a logger process for an outbox, free to outlive this one (settings in its environment, never
    in its command line or on disk)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, ENV_URI: settings.uri, ENV_EXPERIMENT: settings.experiment, ENV_TOKEN: settings.token}
    with open(folder / outbox.LOG, "ab") as log:
        subprocess.Popen([sys.executable, "-m", LOGGER, str(folder.resolve())], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)


class Checked:
    """An executor that checks, before each step it runs, that tracking can work."""

    def __init__(self, executor: Executor, tracker: Tracker) -> None:
        self.executor = executor
        self.tracker = tracker
        self.name = executor.name

    def run(self, call: StepCall) -> dict[str, Any]:
        """Check tracking (TrackingError), then run `call` with the executor."""
        self.tracker.ready()
        return self.executor.run(call)


def metrics(path: str | os.PathLike[str]) -> list[tuple[str, float]]:
    """Return the numbers of a JSON output as metrics (nested keys joined with dots); ValueError if the
    file is not JSON."""
    return list(_numbers(parse_json(Path(path).read_text()), ""))


def name(key: str) -> str:
    """Return a parameter's or metric's name as MLflow takes it: what it refuses replaced, cut to its limit."""
    return PARAM_KEY.sub("_", key)[:MAX_KEY] or "_"


def _numbers(value: Any, prefix: str) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{prefix}.{name(str(key))}" if prefix else name(str(key)))
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and prefix:
        yield name(prefix), float(value)


def as_params(kind: str, reads: dict[str, Any]) -> dict[str, str]:
    """Return the values a step read (dotted key paths, secrets masked) as MLflow parameters:
    `<kind>.<key path>` to text."""
    return {name(f"{kind}.{key}"): (value if isinstance(value, str) else json.dumps(value))[:6000]
            for key, value in reads.items()}
