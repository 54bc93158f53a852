"""Experiment tracking: each result a step made is logged exactly once, into one MLflow run per lineage, by a
logger process off the command's path; read back with MLflow's own client, from the embedded store and from
a real `mlflow server`. No doit command but `doit tracking` imports MLflow."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers import (
    DOIT,
    all_tasks,
    copy_project,
    doit,
    edit,
    environment,
    ran,
    run_doit,
    start_doit,
    tiny_project,
    wait_for,
)

SENTINEL = "TRACKED-SECRET-4242"
NO_SERVER = {"MLFLOW_DISABLE_TELEMETRY": "true"}
EVENT = "mlops.event."
assert "MLFLOW_TRACKING_URI" not in os.environ, "the tests choose where each run logs"


def tracked(project: Path, logger: bool = False) -> Path:
    """Turn the background logger of a tracked project off (the test sends with `doit tracking`) or leave it on."""
    if not logger:
        edit(project / "conf/config.yaml", "  logger: true\n", "  logger: false\n")
    return project


def runs(uri: str, experiment: str = "demand-dev") -> list:
    """Return the runs of an experiment, oldest first, as MLflow's client reads them."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return sorted(client.search_runs([found.experiment_id]), key=lambda run: run.info.start_time)


def embedded(project: Path) -> str:
    return f"sqlite:///{project}/outputs/dev/mlflow.db"


def logged_events(uri: str, experiment: str = "demand-dev") -> Counter[str]:
    """Count, by event id, the runs holding each logged result (1 each: exactly once)."""
    return Counter(key for run in runs(uri, experiment) for key in run.data.tags if key.startswith(EVENT))


def logged_tasks(run) -> list[str]:
    return sorted(value for key, value in run.data.tags.items() if key.startswith(EVENT))


def flush(project: Path, *words: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = run_doit(project, "tracking", *words, env={**NO_SERVER, **(env or {})})
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stdout + result.stderr
    return result


def outbox(project: Path, env: str = "dev") -> list[Path]:
    return sorted((project / "outputs" / env / ".tracking").glob("*.json"))


def made_ids(project: Path, env: str = "dev") -> set[str]:
    """Return the ids of the records saved now in the state (each a result that must be logged)."""
    state = json.loads(run_doit(project, "dumpdb", f"env={env}").stdout)
    records = [(values.get("_values_:") or {}).get("made", {}) for values in state.values()]
    return {made["id"] for made_by_date in records for made in made_by_date.values()}


@pytest.mark.long
def test_each_lineage_is_one_run_with_every_value_its_steps_read_and_what_they_measured(tmp_path: Path) -> None:
    project = tracked(copy_project(tmp_path / "project", tracking=True))
    first = run_doit(project, env={**NO_SERVER, "USER": "ada", "PYTHONPROFILEIMPORTTIME": "1"})
    assert first.returncode == 0, first.stderr
    assert " mlflow" not in first.stderr  # the command never imports MLflow
    assert ("  tracking: 8 results to log to sqlite:///outputs/dev/mlflow.db (experiment demand-dev): "
            "`doit tracking` shows and sends what waits\n") in first.stderr
    shown = flush(project).stdout
    assert shown.startswith("8 results wait to be logged to sqlite:///outputs/dev/mlflow.db:\n"
                            "  pipeline_1: prepare, train, evaluate, predict 2026-01-01\n")
    assert "logged 8 results to sqlite:///outputs/dev/mlflow.db, experiment demand-dev: pipeline_1, pipeline_2" in shown
    logged = {run.info.run_name: run for run in runs(embedded(project))}
    assert sorted(logged) == ["pipeline_1", "pipeline_2"]
    run = logged["pipeline_1"]
    outputs = project / "outputs/dev/pipeline_1"
    assert run.info.status == "FINISHED"
    assert run.data.params["train.alpha"] == "1.0" and run.data.params["prepare.data.days"] == "60"
    assert "predict.date" not in run.data.params and run.data.params["predict.seed"] == "7"
    assert run.data.metrics == json.loads((outputs / "evaluate/metrics.json").read_text())
    tags = run.data.tags
    assert tags["pipeline"] == "pipeline_1" and tags["env"] == "dev" and tags["version"] == "0.1.0"
    assert logged_tasks(run) == sorted(f"{kind}:pipeline_1" for kind in ("prepare", "train", "evaluate", "predict"))
    client = MlflowClient(tracking_uri=embedded(project))
    model = client.download_artifacts(run.info.run_id, "train/model.pkl", str(tmp_path))
    assert Path(model).read_bytes() == (outputs / "train/model.pkl").read_bytes()
    record = client.download_artifacts(run.info.run_id, "train/provenance.json", str(tmp_path))
    assert json.loads(Path(record).read_text()) == json.loads((outputs / "train/provenance.json").read_text())
    dated = client.download_artifacts(run.info.run_id, "predict/2026-01-01/provenance.json", str(tmp_path))
    assert json.loads(Path(dated).read_text()) == json.loads((outputs / "predict/provenance.json").read_text())[
        "2026-01-01"]  # the record of that date
    # The embedded store keeps its files beside its database, in the env's outputs.
    assert (project / "outputs/dev/mlartifacts").is_dir() and not (project / "mlruns").exists()
    assert outbox(project) == []

    # Up to date: nothing to log. One parameter changed: a new lineage, its run complete (upstream included).
    again = run_doit(project, env=NO_SERVER)
    assert ran(again) == set() and "tracking:" not in again.stderr
    assert doit(project, "pipelines.pipeline_1.train.alpha=0.5", **NO_SERVER) == {
        "train:pipeline_1", "evaluate:pipeline_1", "predict:pipeline_1"}
    flush(project, "pipelines.pipeline_1.train.alpha=0.5")
    latest = {run.info.run_name: run for run in runs(embedded(project))}
    assert sorted(latest) == ["pipeline_1", "pipeline_1 train.alpha=0.5", "pipeline_2"]
    new = latest["pipeline_1 train.alpha=0.5"]
    assert new.data.params["train.alpha"] == "0.5" and new.data.params["prepare.data.days"] == "60"
    assert set(new.data.params) == set(run.data.params) and new.data.metrics.keys() == run.data.metrics.keys()
    # Evaluate alone again (its output was removed): into the same lineage's run, which keeps one value per key.
    edit(project / "conf/pipelines/pipeline_1.yaml", "alpha: 1.0", "alpha: 0.5")
    (outputs / "evaluate/metrics.json").unlink()
    assert doit(project, **NO_SERVER) == {"evaluate:pipeline_1"}
    flush(project)
    assert len(runs(embedded(project))) == 3
    assert sum(logged_events(embedded(project)).values()) == 8 + 3 + 1
    assert all(count == 1 for count in logged_events(embedded(project)).values())


def test_every_run_with_metrics_has_the_values_of_its_whole_lineage(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    assert len(doit(project, **NO_SERVER)) == 8
    assert doit(project, "train:a", "pipelines.a.train.alpha=0.7", **NO_SERVER) == {"train:a"}
    assert doit(project, "evaluate:a", "pipelines.a.train.alpha=0.7", **NO_SERVER) == {"evaluate:a"}
    assert doit(project, "predict:a", "date=2026-02-02", "pipelines.a.train.alpha=0.7", **NO_SERVER) == {
        "predict:a"}
    flush(project)
    logged = {run.info.run_name: run for run in runs(embedded(project))}
    assert sorted(logged) == ["a", "a train.alpha=0.7", "b"]
    complete = {"prepare.scale", "prepare.fn", "prepare.inputs.raw", "train.alpha", "train.fn", "train.api_token",
                "evaluate.fn", "predict.fn"}
    for run in logged.values():
        if run.data.metrics:
            assert complete <= set(run.data.params), run.info.run_name
    assert logged_tasks(logged["a train.alpha=0.7"]) == ["evaluate:a", "predict:a", "train:a"]


def test_the_background_logger_sends_what_a_command_made_and_the_command_imports_no_mlflow(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True), logger=True)
    profiled = {**NO_SERVER, "PYTHONPROFILEIMPORTTIME": "1"}
    first = run_doit(project, env=profiled)
    assert first.returncode == 0 and " mlflow" not in first.stderr, first.stderr
    assert "sent by a logger in the background" in first.stderr
    wait_for(lambda: outbox(project) == [], timeout=120)  # the logger removes each event once it is logged
    assert sorted(run.info.run_name for run in runs(embedded(project))) == ["a", "b"]
    for words in ([], ["list"], ["why"], ["env=sandbox"], ["env=sandbox"]):
        result = run_doit(project, *words, env=profiled)
        assert result.returncode == 0, result.stderr
        assert " mlflow" not in result.stderr, words
    assert not (project / "outputs/sandbox/mlflow.db").exists()


def test_parallel_workers_log_each_result_once_and_secrets_never_reach_the_store(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    result = run_doit(project, "-n", "2", env={**NO_SERVER, "MLOPS_TEST_TOKEN": SENTINEL})
    assert result.returncode == 0, result.stderr
    assert len(outbox(project)) == 8 and all(path.name.count(".") == 1 for path in outbox(project))  # all saved
    flush(project)
    logged = runs(embedded(project))
    assert sorted(run.info.run_name for run in logged) == ["a", "b"]
    for run in logged:
        assert run.data.params["train.api_token"] == "********"
        assert run.data.metrics == {"length": float(len((project / f"outputs/dev/{run.data.tags['pipeline']}"
                                                         "/train/model.pkl").read_text()))}
    assert set(logged_events(embedded(project))) == {EVENT + made for made in made_ids(project)}
    for path in (project / "outputs").rglob("*"):
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path


def test_an_unusable_store_or_server_is_one_line_and_the_steps_run_their_results_waiting(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    closed = f"http://user:pw@127.0.0.1:{free_port()}"
    result = run_doit(project, env={**NO_SERVER, "MLFLOW_TRACKING_URI": closed})
    assert result.returncode == 0 and "Traceback" not in result.stdout + result.stderr, result.stderr
    said = [line for line in result.stderr.splitlines() if "cannot be reached" in line]
    shown = closed.replace("user:pw@", "")
    assert len(said) == 1 and said[0].startswith(f"mlops: tracking: the tracking server {shown}")
    assert "their results wait in outputs/dev/.tracking until `doit tracking` logs them" in said[0]
    assert "pw" not in result.stdout + result.stderr.replace("pw@", "") and ran(result) == all_tasks()
    sending = run_doit(project, "tracking", env={**NO_SERVER, "MLFLOW_TRACKING_URI": closed})
    assert sending.returncode != 0 and "Traceback" not in sending.stderr
    assert sending.stderr.startswith("mlops: error: tracking: not logged to http://127.0.0.1:")
    assert ":pw@" not in sending.stdout + sending.stderr and len(outbox(project)) == 8
    # A store that cannot be opened: the same; the events wait, and go to a store that works.
    (tmp_path / "a-folder").mkdir()
    edit(project / "conf/pipelines/a.yaml", "alpha: 0.5", "alpha: 0.6")
    folder = run_doit(project, env={**NO_SERVER, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/a-folder"})
    assert folder.returncode == 0 and ran(folder) == {"train:a", "evaluate:a", "predict:a"}
    assert f"mlops: tracking: the tracking store sqlite:///{tmp_path}/a-folder cannot be opened" in folder.stderr
    flush(project)
    assert sum(logged_events(embedded(project)).values()) == 11 and outbox(project) == []


def test_a_store_left_with_a_hot_journal_by_a_killed_commit_does_not_stop_the_next_command(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    assert len(doit(project, **NO_SERVER)) == 8
    flush(project)
    database = project / "outputs/dev/mlflow.db"
    # A writer killed in the middle of a commit: its rollback journal is left hot beside the database.
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys\n"
        f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
        "db.execute('PRAGMA journal_mode=DELETE'); db.execute('BEGIN EXCLUSIVE')\n"
        "db.execute(\"UPDATE runs SET name = 'torn'\"); db.execute('PRAGMA cache_spill=1')\n"
        "db.execute('CREATE TABLE filler (x)'); db.executemany('INSERT INTO filler VALUES (?)', "
        "[(b'x' * 4000,) for _ in range(3000)])\n"
        "print('in the commit', flush=True); sys.stdin.read()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "in the commit\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert Path(f"{database}-journal").exists()
    edit(project / "conf/pipelines/a.yaml", "alpha: 0.5", "alpha: 0.6")
    result = run_doit(project, env=NO_SERVER)
    assert result.returncode == 0 and ran(result) == {"train:a", "evaluate:a", "predict:a"}, result.stderr
    assert "mlops: tracking:" not in result.stderr
    flush(project)
    names = sorted(run.info.run_name for run in runs(embedded(project)))
    assert names == ["a", "a train.alpha=0.6", "b"]  # the torn commit rolled back: no run named 'torn'


def test_a_logger_stopped_at_any_point_of_logging_never_logs_a_result_twice(tmp_path: Path) -> None:
    from mlops.integrations import logger as sender
    from mlops.integrations.tracking_settings import Settings

    project = tracked(tiny_project(tmp_path / "project", pipelines=("a",), tracking=True))
    assert len(doit(project, **NO_SERVER)) == 4
    folder = project / "outputs/dev/.tracking"
    settings = Settings(True, embedded(project), "demand-dev")
    calls = Counter()

    class Stop(BaseException):
        """A stop (a kill) at one call to the store."""

    stop_at = 1
    while True:  # stop at the 1st call to MLflow, then the 2nd, ...: each time, the rest is sent by a new logger
        original = sender.Sender.__init__

        def stopping(self, settings, *, _at=stop_at, _original=original):  # the real store, stopped at a call
            _original(self, settings)
            client = self.store.client
            for name in ("create_run", "log_artifact", "log_batch", "set_terminated"):
                method = getattr(client, name)

                def counted(*args, _method=method, **kwargs):
                    calls["all"] += 1
                    if calls["all"] == _at:
                        raise Stop
                    return _method(*args, **kwargs)
                setattr(client, name, counted)

        calls.clear()
        sender.Sender.__init__ = stopping
        try:
            sender.flush(folder, settings)
            stopped = False
        except Stop:
            stopped = True
        finally:
            sender.Sender.__init__ = original
        sender.flush(folder, settings)
        counts = logged_events(embedded(project))
        assert len(counts) == 4 * stop_at and set(counts.values()) == {1}, (stop_at, counts)
        (run,) = runs(embedded(project))
        history = MlflowClient(tracking_uri=embedded(project)).get_metric_history(run.info.run_id, "length")
        assert len(history) == stop_at  # one value per evaluate result: none twice
        if not stopped:
            break
        stop_at += 1
        edit(project / "data/a.txt", "raw", "raw again")  # new results to log
        assert len(doit(project, **NO_SERVER)) == 4
    assert stop_at > 4


def test_concurrent_loggers_send_each_waiting_result_once(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    first, second = start_doit(project), start_doit(project)
    for run in (first, second):
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0 and "Traceback" not in err, err
    made = len(outbox(project))
    senders = [subprocess.Popen([DOIT, "tracking"], cwd=project, env=environment(NO_SERVER), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for sender in senders:
        _, err = sender.communicate(timeout=300)
        assert sender.returncode == 0, err
    counts = logged_events(embedded(project))
    assert sum(counts.values()) == made and set(counts.values()) == {1}
    assert {EVENT + made for made in made_ids(project)} <= set(counts)


def test_waiting_results_of_a_sweep_and_of_other_dates_are_all_logged(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", pipelines=("a",), tracking=True))
    assert len(doit(project, **NO_SERVER)) == 4
    assert doit(project, "predict:a", "date=2026-03-03", **NO_SERVER) == {"predict:a"}
    assert len(doit(project, "pipelines.a.train.alpha=0.1,0.3", **NO_SERVER)) == 6  # its own results wait too
    assert len(outbox(project)) == 11
    flush(project)
    logged = {run.info.run_name: run for run in runs(embedded(project))}
    assert sorted(logged) == ["a", "a alpha=0.1", "a alpha=0.3"]
    assert logged_tasks(logged["a"]) == ["evaluate:a", "predict:a", "predict:a", "prepare:a", "train:a"]
    client = MlflowClient(tracking_uri=embedded(project))
    dates = {item.path for item in client.list_artifacts(logged["a"].info.run_id, "predict")}
    assert dates == {"predict/2026-01-01", "predict/2026-03-03"}
    variant = logged["a alpha=0.3"]
    assert variant.data.params["train.alpha"] == "0.3" and variant.data.tags["variant"] == "alpha=0.3"
    assert variant.data.params["prepare.scale"] == "2" and variant.data.metrics
    assert logged_tasks(variant) == ["evaluate:a@alpha_0.3", "predict:a@alpha_0.3", "train:a@alpha_0.3"]
    assert set(logged_events(embedded(project)).values()) == {1}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real MLflow tracking server on 127.0.0.1, one worker, stopped after the test."""
    port = free_port()
    folder = tmp_path / "server"
    folder.mkdir()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--artifacts-destination", str(folder / "artifacts")],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers(uri) or server.poll() is not None, timeout=120)
        assert server.poll() is None, "mlflow server exited"
        yield uri
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)


def answers(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.long
def test_runs_logged_to_a_real_tracking_server(tmp_path: Path, mlflow_server: str) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    edit(project / "conf" / "env" / "prod.yaml", "env: prod\n", f"env: prod\ntracking:\n  uri: {mlflow_server}\n")
    result = run_doit(project, "env=prod", env=NO_SERVER)
    assert result.returncode == 0, result.stderr
    assert f"to log to {mlflow_server} (experiment demand-prod)" in result.stderr
    flush(project, "env=prod")
    logged = runs(mlflow_server, "demand-prod")
    assert sorted(run.info.run_name for run in logged) == ["a", "b"]
    run = next(run for run in logged if run.info.run_name == "a")
    assert run.data.params["train.alpha"] == "0.5" and run.data.tags["env"] == "prod"
    model = MlflowClient(tracking_uri=mlflow_server).download_artifacts(run.info.run_id, "train/model.pkl",
                                                                      str(tmp_path))
    assert Path(model).read_bytes() == (project / "outputs/prod/a/train/model.pkl").read_bytes()
    assert not (project / "outputs/prod/mlflow.db").exists()
    assert ran(run_doit(project, "env=prod", env=NO_SERVER)) == set()
    assert len(runs(mlflow_server, "demand-prod")) == 2


@pytest.mark.long
def test_a_password_in_the_tracking_url_is_printed_by_no_library(tmp_path: Path, mlflow_server: str) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    password = "url-password-8d2f"
    uri = mlflow_server.replace("http://", f"http://ci:{password}@")
    result = run_doit(project, env={**NO_SERVER, "MLFLOW_TRACKING_URI": uri})
    sent = flush(project, env={"MLFLOW_TRACKING_URI": uri})
    assert result.returncode == 0, result.stderr
    assert len(runs(mlflow_server, "demand-dev")) == 2  # logged through the URL with its password
    printed = result.stdout + result.stderr + sent.stdout + sent.stderr
    assert password not in printed and "View run" not in printed
    assert not any(password.encode() in path.read_bytes() for path in (project / "outputs").rglob("*")
                   if path.is_file())


def test_a_logger_stopped_while_it_makes_the_store_leaves_none_half_made(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    assert len(doit(project, **NO_SERVER)) == 8
    sender = subprocess.Popen([DOIT, "tracking"], cwd=project, env=environment(NO_SERVER),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = project / "outputs/dev"
    wait_for(lambda: any(folder.glob(".mlflow.db.*.making")) or sender.poll() is not None, timeout=120)
    sender.kill()
    sender.wait()
    flush(project)
    assert sum(logged_events(embedded(project)).values()) == 8
    assert not list(folder.glob(".mlflow.db.*.making*"))


def test_a_result_whose_record_was_never_saved_is_dropped_and_one_that_was_is_sent(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", pipelines=("a",), tracking=True))
    assert len(doit(project, **NO_SERVER)) == 4
    events = outbox(project)
    # A command killed between saving a record and marking its event: the state says it was saved.
    saved, never = events[0], events[1]
    saved.rename(saved.with_name(saved.name.replace(".json", ".made.json")))
    # One killed before saving its record: not in the state, and its process is gone.
    event = json.loads(never.read_text())
    never.unlink()
    replaced, event["id"], event["owner"] = event["id"], "f" * 32, 2 ** 22 + 12345
    (never.parent / f"{'f' * 32}.made.json").write_text(json.dumps(event))
    assert "logged 3 results" in flush(project).stdout
    assert set(logged_events(embedded(project))) == {EVENT + made for made in made_ids(project) - {replaced}}
    assert outbox(project) == []


def test_metrics_files_of_any_shape_are_logged_or_said_and_the_rest_is_logged(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", pipelines=("a",), tracking=True))
    long = "k" * 300
    edit(project / "tiny_steps.py", '''json.dumps({"length": len(inputs["model"].read_text())})''',
         f'''json.dumps({{"b": {{"c!?": 1, "{long}": 2, "s": "x", "f": True}}, "": 3}})''')
    assert len(doit(project, **NO_SERVER)) == 4
    flush(project)
    (logged,) = runs(embedded(project))
    assert logged.data.metrics == {"b.c__": 1.0, f"b.{long}"[:250]: 2.0, "_": 3.0}
    edit(project / "tiny_steps.py", 'outputs["metrics"].write_text(json.dumps(',
         "outputs['metrics'].write_text('not json' or (")
    result = run_doit(project, "-a", "evaluate:a", env=NO_SERVER)
    assert result.returncode == 0, result.stderr
    sent = flush(project)
    assert "evaluate:a: metrics.json holds no metrics MLflow can take" in sent.stderr
    (latest,) = runs(embedded(project))
    assert logged_tasks(latest).count("evaluate:a") == 2


def test_tracking_uris_mlflow_cannot_keep_runs_at_and_url_passwords(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",), tracking=True)
    for uri, says in (("sqlite://", "keeps no run after the command ends"),
                      ("file:///tmp/runs", "MLflow 3 keeps runs in a database"),
                      ("mlruns", "MLflow 3 keeps runs in a database"),
                      ("ftp://host/x", "is not a store MLflow logs to")):
        result = run_doit(project, f"tracking.uri={uri}")
        assert result.returncode != 0 and result.stderr.startswith(f"mlops: error: tracking.uri: '{uri}'"), uri
        assert says in result.stderr
    bad = run_doit(project, "tracking.logger=sometimes")
    assert bad.returncode != 0 and "tracking.logger: must be true or false" in bad.stderr
    password = "PW-SENTINEL-77"
    printed = run_doit(project, "print_config", f"tracking.uri=http://bob:{password}@127.0.0.1:{free_port()}")
    assert printed.returncode == 0 and password not in printed.stdout + printed.stderr
    assert "uri: '********'" in printed.stdout


def test_a_result_made_from_another_commands_upstream_is_logged_with_the_values_it_was_made_from(
        tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    pause, paused = project / "pause", project / "paused"
    edit(project / "tiny_steps.py", "def prepare(inputs, params, outputs):\n",
         "def prepare(inputs, params, outputs):\n"
         "    import pathlib, time\n"
         "    if pathlib.Path('pause').exists() and inputs['raw'].name == 'b.txt':\n"
         "        pathlib.Path('paused').touch()\n"
         "        while pathlib.Path('pause').exists():\n"
         "            time.sleep(0.01)\n")
    assert len(doit(project, **NO_SERVER)) == 8
    flush(project)
    pause.touch()
    edit(project / "data/b.txt", "raw", "raw again")
    # Trains a with 0.3, then pauses in prepare:b; evaluate:a runs after it.
    first = start_doit(project, "train:a", "prepare:b", "evaluate:a", "pipelines.a.train.alpha=0.3")
    wait_for(paused.exists)
    # Another command remakes a's model with 0.7 meanwhile.
    assert doit(project, "train:a", "pipelines.a.train.alpha=0.7", **NO_SERVER) == {"train:a"}
    pause.unlink()
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    flush(project)
    client = MlflowClient(tracking_uri=embedded(project))
    evaluated = []
    for run in runs(embedded(project)):  # a run's values are those of the records it holds
        if "train:a" in logged_tasks(run):
            where = str(tmp_path / run.info.run_id)
            record = json.loads(Path(client.download_artifacts(run.info.run_id, "train/provenance.json", where))
                                .read_text())
            assert run.data.params["train.alpha"] == str(record["params"]["alpha"]), run.info.run_name
        evaluated += [run.data.params["train.alpha"]] * logged_tasks(run).count("evaluate:a")
    assert sorted(evaluated) == ["0.5", "0.7"]  # the paused command's evaluate used the 0.7 model, and says so
    assert set(logged_events(embedded(project)).values()) == {1}


def test_a_result_mlflow_refuses_is_set_aside_and_the_rest_is_logged(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", tracking=True))
    assert len(doit(project, **NO_SERVER)) == 8
    lineage = next(json.loads(path.read_text())["lineage"] for path in outbox(project)
                   if json.loads(path.read_text())["task"] == "train:a")
    client = MlflowClient(tracking_uri=embedded(project))
    flush(project, "tracking.use=false")  # makes nothing: tracking is off
    experiment = client.create_experiment("demand-dev", (project / "outputs/dev/mlartifacts").as_uri())
    clash = client.create_run(experiment, tags={"mlops.lineage": lineage, "pipeline": "a"}, run_name="a")
    client.log_param(clash.info.run_id, "train.alpha", "9")  # a value the lineage's results contradict
    sent = flush(project)
    assert "train:a" in sent.stderr and "MLflow refused" in sent.stderr and "Traceback" not in sent.stderr
    assert "4 results MLflow refused are kept in .tracking/ as *.held" in sent.stdout
    assert logged_tasks(next(run for run in runs(embedded(project)) if run.info.run_name == "b")) == [
        "evaluate:b", "predict:b", "prepare:b", "train:b"]
    assert len(list((project / "outputs/dev/.tracking").glob("*.held"))) == 4 and outbox(project) == []


def test_a_sweep_s_unswept_steps_belong_to_the_pipeline_s_own_lineage(tmp_path: Path) -> None:
    project = tracked(tiny_project(tmp_path / "project", pipelines=("a",), tracking=True))
    assert len(doit(project, "pipelines.a.train.alpha=0.1,0.3", **NO_SERVER)) == 7  # prepare:a, then the variants
    assert doit(project, **NO_SERVER) == {"train:a", "evaluate:a", "predict:a"}
    flush(project)
    logged = {run.info.run_name: run for run in runs(embedded(project))}
    assert sorted(logged) == ["a", "a alpha=0.1", "a alpha=0.3"]
    assert logged_tasks(logged["a"]) == ["evaluate:a", "predict:a", "prepare:a", "train:a"]


def test_a_background_logger_that_finds_the_outbox_held_asks_for_another_look_and_leaves(tmp_path: Path) -> None:
    import fcntl

    project = tracked(tiny_project(tmp_path / "project", pipelines=("a",), tracking=True))
    assert len(doit(project, **NO_SERVER)) == 4
    folder = project / "outputs/dev/.tracking"
    with open(folder / "logger.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a logger at work
        queued = subprocess.run([sys.executable, "-m", "mlops.integrations.logger", str(folder)], cwd=project,
                                env=environment({**NO_SERVER, "MLOPS_LOGGER_URI": embedded(project),
                                                 "MLOPS_LOGGER_EXPERIMENT": "demand-dev"}), timeout=120)
        assert queued.returncode == 0 and (folder / ".again").exists() and len(outbox(project)) == 4
    flush(project)
    assert len(logged_events(embedded(project))) == 4 and not (folder / ".again").exists()


def test_a_process_is_told_by_its_id_and_start_not_by_its_id_alone() -> None:
    from mlops.state.locks import running, started

    me = os.getpid()
    assert running(me, started(me)) and running(me, None)
    assert not running(me, (started(me) or 0) + 1)  # another process that had this id


def test_tokens_in_a_url_s_user_name_or_query_are_masked_wherever_a_line_shows_a_url() -> None:
    from mlops.common.secrets import redact
    from mlops.integrations.tracking_settings import Settings

    assert redact("failed: http://tok-777-secret@127.0.0.1:9/api") == "failed: http://********@127.0.0.1:9/api"
    assert redact("GET https://h/api?page=2&access_token=abc&x=1") == "GET https://h/api?page=2&access_token=********&x=1"
    assert redact("mail a@b.c; sqlite:///outputs/dev/mlflow.db") == "mail a@b.c; sqlite:///outputs/dev/mlflow.db"
    assert Settings(True, "https://h:1/?token=zz", "e").shown_uri == "https://h:1/?token=********"
