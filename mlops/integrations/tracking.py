"""Experiment tracking: each step that runs logs to one MLflow run per pipeline per command.

`Tracking` reads the config's `tracking:` node. Before a step runs, `ready()` checks that MLflow is
installed and that a tracking server answers (without importing MLflow). After doit has saved a
step's record, `logged()` logs what the step's provenance record says: the values it read (secrets
masked already), the numbers of its metrics outputs, its artifact outputs and the record itself,
with tags naming the pipeline, env, project version, git commit and tasks. A step that was up to
date logs nothing; a step logged once is never logged again for the same record.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import sqlite3
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.common.errors import ConfigError, MlopsError
from mlops.common.files import parse_json, write_atomically
from mlops.common.names import one_line
from mlops.common.secrets import redact
from mlops.plan import Step
from mlops.plan.steps import StepCall
from mlops.run import provenance
from mlops.run.executor import Executor
from mlops.state.locks import alive

NODE = "tracking"
REACH_TIMEOUT = 5.0  # seconds a tracking server has to answer before any step runs
INSTALL = "pip install 'mlops[tracking]'"
OFF = "run without tracking: add tracking.use=false"
PARAM_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")  # what MLflow refuses in a parameter's name
PENDING = ".tracking-pending"  # in the env's outputs: steps whose record is saved but not yet logged
ARTIFACTS = "mlartifacts"  # beside an embedded store's database: the files its runs keep
MAX_PARAM = 6000  # characters MLflow keeps of a parameter's value
MAX_KEY = 250  # characters MLflow allows in a parameter's or metric's name
SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc")


class TrackingError(MlopsError):
    """Tracking is on, but cannot work: MLflow missing, or its server not answering."""


@dataclass(frozen=True)
class Settings:
    """The `tracking:` node: on or off, where, which experiment, the token a server asks for."""

    use: bool
    uri: str = ""
    experiment: str = ""
    token: str = ""

    @staticmethod
    def of(values: dict[str, Any]) -> Settings:
        """Return the settings of a resolved config (ConfigError on a bad value)."""
        node = values.get(NODE) or {}
        if not isinstance(node, dict):
            raise ConfigError(f"{NODE}: must map use, uri, experiment and token to values")
        use = node.get("use", False)
        if not isinstance(use, bool):
            raise ConfigError(f"{NODE}.use: must be true or false, not '{use}'")
        if not use:
            return Settings(False)
        for key in ("uri", "experiment"):
            if not isinstance(node.get(key), str) or not node[key].strip():
                raise ConfigError(f"{NODE}.{key}: must be a non-empty string when {NODE}.use is true")
        check_uri(node["uri"])
        return Settings(True, node["uri"], node["experiment"], str(node.get("token") or ""))

    @property
    def shown_uri(self) -> str:
        """The URI as it may be shown: without a user name or password in it."""
        parts = urllib.parse.urlsplit(self.uri)
        if "@" not in parts.netloc:
            return self.uri
        return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))

    @property
    def remote(self) -> bool:
        """Whether the URI names a tracking server (rather than a store this process opens itself)."""
        return urllib.parse.urlsplit(self.uri).scheme in ("http", "https")


def check_uri(uri: str) -> None:
    """Refuse a tracking URI MLflow cannot keep runs at (ConfigError)."""
    scheme = urllib.parse.urlsplit(uri).scheme.partition("+")[0]
    shown = redact(uri)
    if scheme == "sqlite" and database(uri) is None:
        raise ConfigError(f"{NODE}.uri: '{shown}' keeps no run after the command ends; give the store a file, "
                          "e.g. sqlite:///outputs/dev/mlflow.db")
    if scheme in ("", "file"):
        raise ConfigError(f"{NODE}.uri: '{shown}': MLflow 3 keeps runs in a database, not in folders; use "
                          "sqlite:///<path>/mlflow.db or a tracking server's http(s) URI")
    if scheme not in SCHEMES:
        raise ConfigError(f"{NODE}.uri: '{shown}' is not a store MLflow logs to; use http(s)://<server>, "
                          "sqlite:///<path>, a database URI (postgresql://, mysql://, mssql://) or databricks")


def database(uri: str) -> Path | None:
    """Return the database file of an embedded store's URI (`sqlite:///relative` or `sqlite:////absolute`)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme != "sqlite" or parts.path in ("", "/", "/:memory:"):
        return None
    return Path(parts.path[1:])


def ready(settings: Settings) -> None:
    """Fail with one line if tracking cannot work: MLflow not installed, its database not opening, or its
    server not answering (MLflow itself would retry for a minute or more)."""
    if importlib.util.find_spec("mlflow") is None:
        raise TrackingError(f"{NODE}.use is true, but MLflow is not installed: {INSTALL}; or {OFF}")
    path = database(settings.uri)
    if path is not None:
        try:
            if path.exists():
                with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as opened:
                    opened.execute("PRAGMA schema_version").fetchone()
            else:  # made when the first step is logged (whole: see mlflow_store.made_whole)
                path.parent.mkdir(parents=True, exist_ok=True)
                tempfile.TemporaryFile(dir=path.parent).close()
        except (OSError, sqlite3.Error) as error:
            raise TrackingError(f"the tracking store {settings.shown_uri} cannot be opened ({one_line(str(error))}); "
                                f"point {NODE}.uri (or MLFLOW_TRACKING_URI) at a database file; or {OFF}") from None
    if settings.remote:
        try:
            with urllib.request.urlopen(settings.shown_uri.rstrip("/") + "/health", timeout=REACH_TIMEOUT):
                pass
        except urllib.error.HTTPError:
            pass  # a server answered
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", None) or error
            raise TrackingError(f"the tracking server {settings.shown_uri} cannot be reached ({one_line(str(reason))});"
                                f" start it, or point {NODE}.uri (or MLFLOW_TRACKING_URI) at one that runs; or "
                                f"{OFF}") from None


@dataclass
class Tracker:
    """Logs the steps this command ran, one MLflow run per pipeline, once each step's record is saved."""

    settings: Settings
    env: str
    folder: Path  # the env's outputs folder
    steps: dict[str, Step]  # by doit task name
    runs: dict[str, str] = field(default_factory=dict)  # MLflow run id by pipeline
    tasks: dict[str, list[str]] = field(default_factory=dict)  # tasks logged by pipeline
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
            self.broken = redact(one_line(f"{type(error).__name__}: {error}"))[:300]
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
        names = ", ".join(f"{pipeline} @ {self.env}" for pipeline in self.runs)
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
        run = self.runs.get(step.pipeline)
        if run is None:
            run = self._store.start(f"{step.pipeline} @ {self.env}", _millis(made["started"]), {
                "pipeline": step.pipeline, "env": self.env, "version": str(made["project"].get("version")),
                **_git(made["project"].get("git"))})
            self.runs[step.pipeline] = run
        self.tasks.setdefault(step.pipeline, []).append(step.task)
        kind = step.kind
        outputs = {output: item["path"] for output, item in made["outputs"].items()}
        self._store.log(run, params=params(kind.name, made["params"]),
                        metrics=self._metrics(step.task, [outputs[output] for output in kind.metrics]),
                        tags={"tasks": ", ".join(self.tasks[step.pipeline])},
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
                reason = one_line(str(error))[:200]
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
