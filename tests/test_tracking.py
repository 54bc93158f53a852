"""Experiment tracking: what each step that ran logged, read back with MLflow's own client, from the
embedded store and from a real `mlflow server`; nothing logged twice; no MLflow where nothing is tracked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers import all_tasks, copy_project, doit, edit, ran, run_doit, start_doit, tiny_project, wait_for

SENTINEL = "TRACKED-SECRET-4242"
NO_SERVER = {"MLFLOW_DISABLE_TELEMETRY": "true"}
assert "MLFLOW_TRACKING_URI" not in os.environ, "the tests choose where each run logs"


def runs(uri: str, experiment: str = "demand-dev") -> list:
    """Return the runs of an experiment, oldest first, as MLflow's client reads them."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return sorted(client.search_runs([found.experiment_id]), key=lambda run: run.info.start_time)


def embedded(project: Path) -> str:
    return f"sqlite:///{project}/outputs/dev/mlflow.db"


@pytest.mark.long
def test_each_pipeline_logs_one_run_per_command_with_what_its_steps_read_wrote_and_measured(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", tracking=True)
    first = run_doit(project, env={**NO_SERVER, "USER": "ada"})
    assert first.returncode == 0, first.stderr
    assert ("  tracking: logged pipeline_1 @ dev, pipeline_2 @ dev to experiment demand-dev\n"
            "  see them: mlflow ui --backend-store-uri sqlite:///outputs/dev/mlflow.db\n") in first.stderr
    logged = {run.info.run_name: run for run in runs(embedded(project))}
    assert sorted(logged) == ["pipeline_1 @ dev", "pipeline_2 @ dev"]
    run = logged["pipeline_1 @ dev"]
    outputs = project / "outputs/dev/pipeline_1"
    assert run.info.status == "FINISHED"
    assert run.data.params["train.alpha"] == "1.0" and run.data.params["prepare.data.days"] == "60"
    assert run.data.params["predict.date"] == "2026-01-01"
    assert run.data.metrics == json.loads((outputs / "evaluate/metrics.json").read_text())
    tags = run.data.tags
    assert tags["pipeline"] == "pipeline_1" and tags["env"] == "dev" and tags["version"] == "0.1.0"
    assert tags["tasks"] == "prepare:pipeline_1, train:pipeline_1, evaluate:pipeline_1, predict:pipeline_1"
    client = MlflowClient(tracking_uri=embedded(project))
    model = client.download_artifacts(run.info.run_id, "train/model.pkl", str(tmp_path))
    assert Path(model).read_bytes() == (outputs / "train/model.pkl").read_bytes()
    record = client.download_artifacts(run.info.run_id, "train/provenance.json", str(tmp_path))
    assert json.loads(Path(record).read_text()) == json.loads((outputs / "train/provenance.json").read_text())
    # The embedded store keeps its files beside its database, in the env's outputs.
    assert (project / "outputs/dev/mlartifacts").is_dir() and not (project / "mlruns").exists()

    # Up to date: nothing logged. One parameter changed: one new run, of the steps that ran.
    again = run_doit(project, env=NO_SERVER)
    assert ran(again) == set() and "tracking:" not in again.stderr
    assert len(runs(embedded(project))) == 2
    assert doit(project, "pipelines.pipeline_1.train.alpha=0.5", **NO_SERVER) == {
        "train:pipeline_1", "evaluate:pipeline_1", "predict:pipeline_1"}
    latest = runs(embedded(project))
    assert len(latest) == 3
    assert latest[-1].data.tags["tasks"] == "train:pipeline_1, evaluate:pipeline_1, predict:pipeline_1"
    assert latest[-1].data.params["train.alpha"] == "0.5"


def test_parallel_workers_log_one_run_per_pipeline_and_secrets_never_reach_the_store(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    result = run_doit(project, "-n", "2", env={**NO_SERVER, "MLOPS_TEST_TOKEN": SENTINEL})
    assert result.returncode == 0, result.stderr
    logged = runs(embedded(project))
    assert sorted(run.info.run_name for run in logged) == ["a @ dev", "b @ dev"]
    for run in logged:
        assert run.data.params["train.api_token"] == "********"
        assert run.data.metrics == {"length": float(len((project / f"outputs/dev/{run.data.tags['pipeline']}"
                                                         "/train/model.pkl").read_text()))}
    for path in (project / "outputs").rglob("*"):
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path


def test_no_op_runs_and_untracked_envs_import_no_mlflow(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    profiled = {**NO_SERVER, "PYTHONPROFILEIMPORTTIME": "1"}
    first = run_doit(project, env=profiled)
    assert first.returncode == 0 and "mlflow" in first.stderr  # the profile sees it when a step was tracked
    for words in ([], ["list"], ["why"], ["env=sandbox"], ["env=sandbox"]):
        result = run_doit(project, *words, env=profiled)
        assert result.returncode == 0, result.stderr
        assert " mlflow" not in result.stderr, words
    assert ran(run_doit(project, "env=sandbox", env=NO_SERVER)) == set()
    assert not (project / "outputs/sandbox/mlflow.db").exists()


def test_a_tracking_server_that_does_not_answer_stops_the_run_before_any_step(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    closed = f"http://user:pw@127.0.0.1:{free_port()}"
    result = run_doit(project, env={**NO_SERVER, "MLFLOW_TRACKING_URI": closed})
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "cannot be reached" in line)
    assert closed.replace("user:pw@", "") in line and "tracking.use=false" in line and "pw" not in result.stdout
    assert ran(result) == {"prepare:a"} and "prepare:a: the tracking server" in line  # its step function never ran
    assert not (project / "outputs/dev/a/prepare").exists()
    # Going on without tracking, as the line says.
    assert doit(project, "tracking.use=false", MLFLOW_TRACKING_URI=closed) == {
        f"{step}:{name}" for step in ("prepare", "train", "evaluate", "predict") for name in "ab"}


def test_a_store_that_cannot_be_opened_stops_the_run_before_any_step(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    (tmp_path / "a-folder").mkdir()  # where the database file would go: SQLite cannot open it
    result = run_doit(project, env={**NO_SERVER, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/a-folder"})
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert f"prepare:a: the tracking store sqlite:///{tmp_path}/a-folder cannot be opened" in result.stdout
    assert not (project / "outputs/dev/a/prepare").exists()


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
    project = tiny_project(tmp_path / "project", tracking=True)
    edit(project / "conf" / "env" / "prod.yaml", "env: prod\n", f"env: prod\ntracking:\n  uri: {mlflow_server}\n")
    result = run_doit(project, "env=prod", env=NO_SERVER)
    assert result.returncode == 0, result.stderr
    assert f"to experiment demand-prod\n  see them at {mlflow_server}\n" in result.stderr
    logged = runs(mlflow_server, "demand-prod")
    assert sorted(run.info.run_name for run in logged) == ["a @ prod", "b @ prod"]
    run = next(run for run in logged if run.info.run_name == "a @ prod")
    assert run.data.params["train.alpha"] == "0.5" and run.data.tags["env"] == "prod"
    model = MlflowClient(tracking_uri=mlflow_server).download_artifacts(run.info.run_id, "train/model.pkl",
                                                                      str(tmp_path))
    assert Path(model).read_bytes() == (project / "outputs/prod/a/train/model.pkl").read_bytes()
    assert not (project / "outputs/prod/mlflow.db").exists()
    assert ran(run_doit(project, "env=prod", env=NO_SERVER)) == set()
    assert len(runs(mlflow_server, "demand-prod")) == 2


@pytest.mark.long
def test_a_password_in_the_tracking_url_is_printed_by_no_library(tmp_path: Path, mlflow_server: str) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    password = "url-password-8d2f"
    uri = mlflow_server.replace("http://", f"http://ci:{password}@")
    result = run_doit(project, env={**NO_SERVER, "MLFLOW_TRACKING_URI": uri})
    assert result.returncode == 0, result.stderr
    assert len(runs(mlflow_server, "demand-dev")) == 2  # logged through the URL with its password
    assert password not in result.stdout + result.stderr and "View run" not in result.stdout


def test_a_first_run_stopped_while_it_makes_the_store_leaves_none_half_made(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    run = start_doit(project)
    folder = project / "outputs/dev"
    wait_for(lambda: any(folder.glob(".mlflow.db.*.making")))
    run.kill()
    run.communicate()
    assert not (folder / "mlflow.db").exists()
    result = run_doit(project, env=NO_SERVER)
    assert result.returncode == 0 and "was not logged" not in result.stderr, result.stderr
    assert {task for run in runs(embedded(project)) for task in run.data.tags["tasks"].split(", ")} == all_tasks()
    assert not list(folder.glob(".mlflow.db.*.making"))


def test_concurrent_first_runs_share_one_store_and_log_each_step_they_ran(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    first, second = start_doit(project), start_doit(project)
    made = []
    for run in (first, second):
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0 and "was not logged" not in err and "Traceback" not in err, err
        made += [line.split()[1] for line in out.splitlines() if line.startswith(".  ")]  # not those taken (~)
    logged = [task for run in runs(embedded(project)) for task in run.data.tags["tasks"].split(", ")]
    assert sorted(logged) == sorted(made) and set(logged) == all_tasks()


def test_a_step_whose_record_was_saved_but_not_logged_is_logged_by_the_next_command_that_logs(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    run = start_doit(project, "prepare:a")
    pending = project / "outputs/dev/.tracking-pending"
    wait_for(lambda: any(pending.glob("prepare--a@.json")))  # saved; MLflow still importing
    run.kill()
    run.communicate()
    assert runs(embedded(project)) == [] and ran(run_doit(project, "prepare:a", env=NO_SERVER)) == set()
    assert doit(project, "train:a", **NO_SERVER) == {"train:a"}
    (logged,) = runs(embedded(project))
    assert logged.data.tags["tasks"] == "prepare:a, train:a" and logged.data.params["prepare.scale"] == "2"
    assert not list(pending.glob("*.json"))


def test_a_failure_while_logging_keeps_outputs_and_records_and_the_next_command_that_logs_catches_up(
        tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    (project / "outputs/dev").mkdir(parents=True)
    client = MlflowClient(tracking_uri=embedded(project))
    # Where our store keeps artifacts (by default MLflow would use ./mlruns of this process's folder).
    experiment = client.create_experiment("demand-dev", (project / "outputs/dev/mlartifacts").as_uri())
    client.delete_experiment(experiment)  # MLflow logs no run into a deleted experiment
    result = run_doit(project, env=NO_SERVER)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("mlops: tracking:")]
    assert len(said) == 1 and "prepare:a was not logged to sqlite:///outputs/dev/mlflow.db" in said[0], said
    assert "its outputs and record are kept, and the next command that logs a step logs it" in said[0]
    assert len(ran(result)) == 8 and "tracking: logged" not in result.stderr
    assert ran(run_doit(project, env=NO_SERVER)) == set()  # the records were kept: nothing runs again
    client.restore_experiment(experiment)
    edit(project / "conf/pipelines/a.yaml", "alpha: 0.5", "alpha: 0.7")
    assert doit(project, **NO_SERVER) == {"train:a", "evaluate:a", "predict:a"}
    logged = [task for run in runs(embedded(project)) for task in run.data.tags["tasks"].split(", ")]
    # train:a's first result was replaced before it could be logged; evaluate:a's is logged, then its new one.
    assert sorted(logged) == sorted([*all_tasks(), "evaluate:a", "predict:a"])


def test_metrics_files_of_any_shape_are_logged_or_said_and_the_rest_is_logged(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",), tracking=True)
    long = "k" * 300
    edit(project / "tiny_steps.py", '''json.dumps({"length": len(inputs["model"].read_text())})''',
         f'''json.dumps({{"b": {{"c!?": 1, "{long}": 2, "s": "x", "f": True}}, "": 3}})''')
    assert len(doit(project, **NO_SERVER)) == 4
    (logged,) = runs(embedded(project))
    assert logged.data.metrics == {"b.c__": 1.0, f"b.{long}"[:250]: 2.0, "_": 3.0}
    edit(project / "tiny_steps.py", 'outputs["metrics"].write_text(json.dumps(',
         "outputs['metrics'].write_text('not json' or (")
    result = run_doit(project, "-a", "evaluate:a", env=NO_SERVER)
    assert result.returncode == 0, result.stderr
    assert "evaluate:a: outputs/dev/a/evaluate/metrics.json holds no metrics MLflow can take" in result.stderr
    assert "was not logged" not in result.stderr
    latest = runs(embedded(project))[-1]
    assert "evaluate:a" in latest.data.tags["tasks"] and latest.data.metrics == {}


def test_tracking_uris_mlflow_cannot_keep_runs_at_and_url_passwords(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",), tracking=True)
    for uri, says in (("sqlite://", "keeps no run after the command ends"),
                      ("file:///tmp/runs", "MLflow 3 keeps runs in a database"),
                      ("mlruns", "MLflow 3 keeps runs in a database"),
                      ("ftp://host/x", "is not a store MLflow logs to")):
        result = run_doit(project, f"tracking.uri={uri}")
        assert result.returncode != 0 and result.stderr.startswith(f"mlops: error: tracking.uri: '{uri}'"), uri
        assert says in result.stderr
    password = "PW-SENTINEL-77"
    printed = run_doit(project, "print_config", f"tracking.uri=http://bob:{password}@127.0.0.1:{free_port()}")
    assert printed.returncode == 0 and password not in printed.stdout + printed.stderr
    assert "uri: '********'" in printed.stdout


def test_each_variant_of_a_sweep_is_a_run_of_its_own(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",), tracking=True)
    assert len(doit(project, "pipelines.a.train.alpha=0.1,0.3", **NO_SERVER)) == 7
    logged = {run.info.run_name: run for run in runs(embedded(project))}
    assert sorted(logged) == ["a @ dev", "a alpha=0.1 @ dev", "a alpha=0.3 @ dev"]
    assert logged["a @ dev"].data.tags["tasks"] == "prepare:a"
    variant = logged["a alpha=0.3 @ dev"]
    assert variant.data.params["train.alpha"] == "0.3" and variant.data.tags["variant"] == "alpha=0.3"
    assert variant.data.tags["tasks"] == "train:a@alpha_0.3, evaluate:a@alpha_0.3, predict:a@alpha_0.3"
