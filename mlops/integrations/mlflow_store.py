"""The one module that imports MLflow: an experiment to log runs to, through MLflow's own client.

MLflow's telemetry is off unless the user turns it on (MLFLOW_DISABLE_TELEMETRY=false), and a
server that stops answering is given up on after a few tries rather than MLflow's minutes of retries.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
# MLflow prints `View run ... at: <tracking URL>` for each run, a password in the URL included
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"

from mlflow.entities import Metric, Param, Run, RunTag  # after the settings above
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

LINEAGE = "mlops.lineage"  # the tag of a run that holds one lineage: its key
MAX_PARAMS, MAX_METRICS, MAX_TAGS = 100, 1000, 100  # what one log_batch takes


class Refused(Exception):
    """MLflow refused what was logged (a parameter's value changed in a run, a value it does not take)."""


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

    def lineage_runs(self) -> dict[str, Run]:
        """Return the experiment's runs of lineages (tagged `mlops.lineage`), by lineage key, oldest first."""
        found: dict[str, Run] = {}
        token = None
        while True:
            page = self.client.search_runs([self.experiment], max_results=1000, page_token=token,
                                           order_by=["attributes.start_time ASC"])
            for run in page:
                key = run.data.tags.get(LINEAGE)
                if key and key not in found:
                    found[key] = run
            token = page.token
            if not token:
                return found

    def start(self, name: str, started: int, tags: dict[str, str]) -> Run:
        """Create a run and return it."""
        return self.client.create_run(self.experiment, start_time=started, tags=tags, run_name=name)

    def log(self, run: str, params: dict[str, str], metrics: list[tuple[str, float, int]], tags: dict[str, str],
            files: list[tuple[str, str]], marks: dict[str, str]) -> None:
        """Log into `run`: its files first (path, artifact folder), then parameters, metrics (key, value, time)
        and tags in batches, then the `marks` tags, only once all the rest is there. A retry logs the same again
        harmlessly: an equal parameter, an equal metric (value, time and step), a file, a tag."""
        for path, folder in files:
            self.client.log_artifact(run, path, folder)
        entities = ([Param(key, value) for key, value in params.items()],
                    [Metric(key, value, at, 0) for key, value, at in metrics],
                    [RunTag(key, value) for key, value in tags.items()])
        for batch in (*_batches(*entities), *_batches([], [], [RunTag(key, value) for key, value in marks.items()])):
            try:
                self.client.log_batch(run, params=batch[0], metrics=batch[1], tags=batch[2])
            except MlflowException as error:
                if error.error_code == "INVALID_PARAMETER_VALUE":  # a value it will not take, e.g. a changed param
                    raise Refused(error.message) from None
                raise

    def end(self, run: str, ended: int) -> None:
        """Mark a run finished at `ended` (milliseconds)."""
        self.client.set_terminated(run, "FINISHED", end_time=ended)


def _batches(params: list[Param], metrics: list[Metric], tags: list[RunTag]) -> list[tuple[list[Param],
                                                                                           list[Metric],
                                                                                           list[RunTag]]]:
    """Cut parameters, metrics and tags into MLflow's batch limits (100, 1000, 100)."""
    found = []
    while params or metrics or tags:
        found.append((params[:MAX_PARAMS], metrics[:MAX_METRICS], tags[:MAX_TAGS]))
        params, metrics, tags = params[MAX_PARAMS:], metrics[MAX_METRICS:], tags[MAX_TAGS:]
    return found


def made_whole(database: Path) -> None:
    """Make an embedded store's database if it is missing: its tables are made in a file of its own, which
    then takes the database's name, under a lock; an interrupted or concurrent first run leaves no half-made
    store behind."""
    if database.exists():
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.parent / f".{database.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for stale in database.parent.glob(f".{database.name}.*.making*"):  # its SQLite journal too
            stale.unlink(missing_ok=True)  # left by a run that was stopped while making it
        if database.exists():
            return  # another command made it while this one waited
        making = database.parent / f".{database.name}.{os.getpid()}.making"
        MlflowClient(tracking_uri=f"sqlite:///{making.resolve()}").search_experiments(max_results=1)  # makes tables
        os.replace(making, database)
