"""Experiment tracking: each step that runs logs to one MLflow run per pipeline per command.

Before a step runs, `Tracker.ready()` checks that tracking can work (see `tracking_settings`). After
doit has saved a step's record, `Tracker.logged()` logs what the step's provenance record says: the
values it read (secrets masked already), the numbers of its metrics outputs, its artifact outputs
and the record itself, with tags naming the pipeline, env, project version, git commit and tasks.
A step that was up to date logs nothing; a step logged once is never logged again for the same record.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.common.files import parse_json, write_atomically
from mlops.common.names import one_line
from mlops.integrations.tracking_settings import Settings, database, ready
from mlops.plan import Step
from mlops.plan.steps import StepCall
from mlops.run import provenance
from mlops.run.executor import Executor
from mlops.state.locks import alive

PARAM_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")  # what MLflow refuses in a parameter's name
PENDING = ".tracking-pending"  # in the env's outputs: steps whose record is saved but not yet logged
ARTIFACTS = "mlartifacts"  # beside an embedded store's database: the files its runs keep
MAX_PARAM = 6000  # characters MLflow keeps of a parameter's value
MAX_KEY = 250  # characters MLflow allows in a parameter's or metric's name


@dataclass
class Tracker:
    """Logs the steps this command ran, one MLflow run per pipeline, once each step's record is saved."""

    settings: Settings
    env: str
    folder: Path  # the env's outputs folder
    steps: dict[str, Step]  # by doit task name
    runs: dict[str, str] = field(default_factory=dict)  # MLflow run id by run name (pipeline, variant, env)
    tasks: dict[str, list[str]] = field(default_factory=dict)  # tasks logged, by run name
    broken: str = ""  # why tracking stopped for the rest of this command
    _checked: bool = False
    _caught_up: bool = False
    _store: Any = None

    def ready(self) -> None:
        """Check, once per process, that tracking can work before a step runs (TrackingError)."""
        if not self._checked:
            ready(self.settings)
            self._checked = True

    def logged(self, task: str, date: str | None) -> None:
        """Log a step that ran, now that its record is saved. Until it is logged, it is noted as pending
        in the env's outputs: a command stopped before logging it, or whose logging failed (told in one
        line; the rest of that command logs nothing), leaves it to the next command that logs."""
        step = self.steps.get(task)
        if step is None:
            return
        pending = self._pending(task, date)
        write_atomically(pending, json.dumps({"task": task, "date": date, "pid": os.getpid()}))
        if self.broken:
            return
        try:
            for left, left_date in self._left_over(pending):
                self._log(self.steps[left], left_date)
                self._pending(left, left_date).unlink(missing_ok=True)
            self._log(step, date)
            pending.unlink(missing_ok=True)
        except Exception as error:  # MLflow, its database or its server: any failure is one line
            self.broken = one_line(f"{type(error).__name__}: {error}", 300)
            print(f"mlops: tracking: {task} was not logged to {self.settings.shown_uri} ({self.broken}); its "
                  "outputs and record are kept, and the next command that logs a step logs it and the rest of "
                  "this command's steps", file=sys.stderr)

    def _pending(self, task: str, date: str | None) -> Path:
        return self.folder / PENDING / f"{task.replace(':', '--')}@{date or ''}.json"

    def _left_over(self, current: Path) -> list[tuple[str, str | None]]:
        """Return (once per command) the steps earlier commands ran but did not log, whose outputs are still
        the ones their record describes; forget the others."""
        if self._caught_up:
            return []
        self._caught_up = True
        found = []
        for path in sorted((self.folder / PENDING).glob("*.json")):
            try:
                noted = parse_json(path.read_text())
                task, date, pid = noted["task"], noted["date"], noted["pid"]
            except (OSError, ValueError, KeyError, TypeError):
                task = date = pid = None
            if path == current or (isinstance(pid, int) and pid != os.getpid() and alive(pid)):
                continue  # being logged by the command that ran it
            step = self.steps.get(task) if isinstance(task, str) else None
            if step is None or not (Path(step.folder) / provenance.FILE).exists():
                path.unlink(missing_ok=True)  # a pipeline or step no longer planned: nothing to log
                continue
            found.append((task, date))
        return found

    def summary(self) -> str:
        """Return the report's lines on where this command's runs are, or nothing if it logged none."""
        if not self.runs:
            return ""
        names = ", ".join(self.runs)
        where = self.settings.shown_uri
        see = f"see them: mlflow ui --backend-store-uri {where}" if not self.settings.remote else f"see them at {where}"
        return f"tracking: logged {names} to experiment {self.settings.experiment}\n{see}"

    def _log(self, step: Step, date: str | None) -> None:
        made = _record(Path(step.folder) / provenance.FILE, date)
        if self._store is None:
            from mlops.integrations.mlflow_store import Store  # MLflow's import costs a second: only now

            path = database(self.settings.uri)  # an embedded store keeps its runs' files beside it
            artifacts = (path.resolve().parent / ARTIFACTS).as_uri() if path is not None else None
            self._store = Store(self.settings.uri, self.settings.experiment, self.settings.token, artifacts, path)
        named = f"{step.pipeline}{f' {step.variant}' if step.variant else ''} @ {self.env}"  # one run a variant
        run = self.runs.get(named)
        if run is None:
            variant = {"variant": step.variant} if step.variant else {}
            run = self._store.start(named, _millis(made["started"]), {
                "pipeline": step.pipeline, **variant, "env": self.env, "version": str(made["project"].get("version")),
                **_git(made["project"].get("git"))})
            self.runs[named] = run
        self.tasks.setdefault(named, []).append(step.task)
        kind = step.kind
        outputs = {output: item["path"] for output, item in made["outputs"].items()}
        self._store.log(run, params=params(kind.name, made["params"]),
                        metrics=self._metrics(step.task, [outputs[output] for output in kind.metrics]),
                        tags={"tasks": ", ".join(self.tasks[named])},
                        files=[*(outputs[output] for output in kind.artifacts),
                               str(Path(step.folder) / provenance.FILE)],
                        folder=kind.name, ended=_millis(made["ended"]))

    def _metrics(self, task: str, paths: list[str]) -> dict[str, float]:
        """Return the metrics of a step's metrics outputs; one that is not JSON is said and left out."""
        found: dict[str, float] = {}
        for path in paths:
            try:
                found.update(metrics(path))
            except (OSError, ValueError) as error:
                reason = one_line(str(error), 200)
                print(f"mlops: tracking: {task}: {path} holds no metrics MLflow can take ({reason}); its other "
                      "values and files are logged", file=sys.stderr)
        return found


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


def _record(path: Path, date: str | None) -> dict[str, Any]:
    """Return the provenance record of what the step made (for `date`, when it is dated)."""
    made = parse_json(path.read_text())
    if date is not None:
        made = made[date]
    if not isinstance(made, dict):
        raise ValueError(f"{path}: not a provenance record")
    return made


def params(kind: str, reads: dict[str, Any]) -> dict[str, str]:
    """Return the values a step read (dotted key paths, secrets masked) as MLflow parameters:
    `<kind>.<key path>` to text."""
    return {name(f"{kind}.{key}"): (value if isinstance(value, str) else json.dumps(value))[:MAX_PARAM]
            for key, value in reads.items()}


def metrics(path: str) -> list[tuple[str, float]]:
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


def _millis(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1000)


def _git(git: Any) -> dict[str, str]:
    if not isinstance(git, dict):
        return {}
    return {"git_commit": str(git.get("commit")), "git_dirty": str(bool(git.get("dirty"))).lower()}
