"""The `tracking:` node, and the checks made before a step runs: MLflow installed, its store or server usable.

Nothing here imports MLflow: a command that runs no tracked step never pays for its import.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.common.errors import ConfigError, MlopsError
from mlops.common.names import one_line
from mlops.common.secrets import redact

NODE = "tracking"
REACH_TIMEOUT = 5.0  # seconds a tracking server has to answer before any step runs
INSTALL = "pip install 'mlops[tracking]'"
OFF = "run without tracking: add tracking.use=false"
SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks", "databricks-uc")


class TrackingError(MlopsError):
    """Tracking is on, but cannot work: MLflow is missing."""



class StoreUnavailable(TrackingError):
    """Tracking is on, but its store or server cannot be used now: results wait in the outbox."""


@dataclass(frozen=True)
class Settings:
    """The `tracking:` node: on or off, where, which experiment, the token a server asks for, and whether a
    command starts a logger process for the results it made (else they wait for `doit tracking`)."""

    use: bool
    uri: str = ""
    experiment: str = ""
    token: str = ""
    logger: bool = True

    @staticmethod
    def of(values: dict[str, Any]) -> Settings:
        """Return the settings of a resolved config (ConfigError on a bad value)."""
        node = values.get(NODE) or {}
        if not isinstance(node, dict):
            raise ConfigError(f"{NODE}: must map use, uri, experiment, token and logger to values")
        use = node.get("use", False)
        if not isinstance(use, bool):
            raise ConfigError(f"{NODE}.use: must be true or false, not '{use}'")
        if not use:
            return Settings(False)
        for key in ("uri", "experiment"):
            if not isinstance(node.get(key), str) or not node[key].strip():
                raise ConfigError(f"{NODE}.{key}: must be a non-empty string when {NODE}.use is true")
        check_uri(node["uri"])
        logger = node.get("logger", True)
        if not isinstance(logger, bool):
            raise ConfigError(f"{NODE}.logger: must be true or false, not '{logger}'")
        return Settings(True, node["uri"], node["experiment"], str(node.get("token") or ""), logger)

    @property
    def shown_uri(self) -> str:
        """The URI as it may be shown: without a user name or password in it, secret-looking query values masked."""
        parts = urllib.parse.urlsplit(self.uri)
        if "@" not in parts.netloc:
            return redact(self.uri)
        return redact(urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2])))

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
    """Fail with one line if tracking cannot work: MLflow not installed (TrackingError), or its database not
    opening or its server not answering (StoreUnavailable; MLflow itself would retry for a minute or more)."""
    import importlib.util  # here: a command that runs no step needs none of these
    import sqlite3
    import tempfile
    import urllib.error
    import urllib.request

    if importlib.util.find_spec("mlflow") is None:
        raise TrackingError(f"{NODE}.use is true, but MLflow is not installed: {INSTALL}; or {OFF}")
    path = database(settings.uri)
    if path is not None:
        try:
            if path.exists():
                # Opened for writing, as MLflow opens it: a reader of a store whose last writer was killed
                # mid-commit rolls its journal back (a read-only one cannot, and fails). Busy is in use: fine.
                with contextlib.closing(sqlite3.connect(path, timeout=1.0)) as opened:
                    opened.execute("PRAGMA schema_version").fetchone()
            else:  # made when the first result is logged (whole: see mlflow_store.made_whole)
                path.parent.mkdir(parents=True, exist_ok=True)
                tempfile.TemporaryFile(dir=path.parent).close()
        except (OSError, sqlite3.Error) as error:
            if not (isinstance(error, sqlite3.OperationalError) and "locked" in str(error)):
                problem = f"the tracking store {settings.shown_uri} cannot be opened ({one_line(str(error))})"
                raise _unusable(problem) from None
    if settings.remote:
        try:
            with urllib.request.urlopen(settings.shown_uri.rstrip("/") + "/health", timeout=REACH_TIMEOUT):
                pass
        except urllib.error.HTTPError:
            pass  # a server answered
        except (OSError, ValueError) as error:
            reason = one_line(str(getattr(error, "reason", None) or error))
            raise _unusable(f"the tracking server {settings.shown_uri} cannot be reached ({reason})") from None


def _unusable(problem: str) -> StoreUnavailable:
    return StoreUnavailable(f"{problem}; start it, or point {NODE}.uri (or MLFLOW_TRACKING_URI) at one that works; "
                            f"or {OFF}")
