"""The one module that imports MLflow: an experiment to log runs to, through MLflow's own client.

MLflow's telemetry is off unless the user turns it on (MLFLOW_DISABLE_TELEMETRY=false), and a
server that stops answering is given up on after a few tries rather than MLflow's minutes of retries.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# MLflow prints `View run ... at: <tracking URL>` for each run, a password in the URL included
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"

from mlflow.entities import Metric, Param, RunTag  # after the settings above
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


class Store:
    """One experiment of one tracking URI."""

    def __init__(self, uri: str, experiment: str, token: str, artifacts: str | None, database: Path | None) -> None:
        """Open the experiment (made if missing; its files kept at `artifacts`, else where the store says);
        an embedded store's `database` file is made whole first, if it is missing."""
        if token:
            os.environ.setdefault("MLFLOW_TRACKING_TOKEN", token)
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if database is not None:
            made_whole(database)
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment = self._experiment(experiment, artifacts)

    def _experiment(self, name: str, artifacts: str | None) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(self.client.create_experiment(name, artifact_location=artifacts))
        except MlflowException:  # another command created it meanwhile
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def start(self, name: str, started: int, tags: dict[str, str]) -> str:
        """Create a run and return its id."""
        return str(self.client.create_run(self.experiment, start_time=started, tags=tags, run_name=name).info.run_id)

    def log(self, run: str, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str],
            files: list[str], folder: str, ended: int) -> None:
        """Log one step into `run`: its parameters, metrics, tags and files (under `folder/`); the run ends
        as finished (a later step of the same pipeline in this command logs into it again)."""
        now = int(time.time() * 1000)
        self.client.log_batch(run, params=[Param(key, value) for key, value in params.items()],
                              metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
                              tags=[RunTag(key, value) for key, value in tags.items()])
        for path in files:
            self.client.log_artifact(run, path, folder)
        self.client.set_terminated(run, "FINISHED", end_time=ended)


def made_whole(database: Path) -> None:
    """Make an embedded store's database if it is missing: its tables are made in a file of its own, which
    then takes the database's name, under a lock; an interrupted or concurrent first run leaves no half-made
    store behind."""
    if database.exists():
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.parent / f".{database.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in database.parent.glob(f".{database.name}.*.making"):
            stale.unlink(missing_ok=True)  # left by a run that was stopped while making it
        if database.exists():
            return  # another command made it while this one waited
        making = database.parent / f".{database.name}.{os.getpid()}.making"
        MlflowClient(tracking_uri=f"sqlite:///{making.resolve()}").search_experiments(max_results=1)  # makes tables
        os.replace(making, database)
