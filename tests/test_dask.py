"""Steps on a real Dask cluster: a scheduler and two workers on 127.0.0.1, started and stopped by the tests."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client

from helpers import REPO, STEPS, all_tasks, copy_project, doit, edit, environment, ran, run_doit, tiny_project, wait_for

DASK = str(Path(sys.executable).parent / "dask")
BLOCKING_TRAIN = '''
def train(inputs, params, outputs):
    import os, threading
    from pathlib import Path
    marker = Path(inputs["features"]).resolve().parents[4] / "started"
    if not marker.exists():  # the first worker to run it waits here, to be killed or stopped
        Path(f"{marker}.tmp").write_text(str(os.getpid()))
        os.replace(f"{marker}.tmp", marker)
        threading.Event().wait()
    outputs["model"].write_text(f"{inputs['features'].read_text()}|alpha={params['alpha']}")
'''


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A `dask scheduler` and its `dask worker` processes, each in its own process group."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.start(["scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"])

    def start(self, args: list[str], prefix: tuple[str, ...] = ()) -> None:
        log = open(self.folder / f"dask-{len(self.processes)}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes.append(subprocess.Popen([*prefix, DASK, *args], cwd=self.folder, env=environment(),
                                               stdout=log, stderr=log, start_new_session=True))

    def worker(self, prefix: tuple[str, ...] = ()) -> None:
        self.start(["worker", self.address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], prefix)

    def wait_for_workers(self, count: int) -> dict[str, int]:
        """Wait until `count` workers have registered; return each worker's process id by address."""
        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(count, timeout=120)
            return client.run(os.getpid)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)


def records(project: Path) -> list[dict]:
    """Return every provenance record in the project's dev outputs (a dated step's file holds one per date)."""
    found = []
    for path in (project / "outputs/dev").glob("*/*/provenance.json"):
        made = json.loads(path.read_text())
        found += [made] if "task" in made else list(made.values())
    return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    folder = tmp_path / "cluster"
    folder.mkdir()
    running = Cluster(folder)
    try:
        running.worker()
        running.worker()
        yield running
    finally:
        running.stop()


def start_blocking(project: Path, cluster: Cluster) -> subprocess.Popen[str]:
    """Start `doit` on the cluster with a train step that blocks in the first worker to run it."""
    edit(project / "tiny_steps.py", "def train(inputs, params, outputs):\n",
         BLOCKING_TRAIN + "\n\ndef _replaced_train(inputs, params, outputs):\n")
    return subprocess.Popen([str(Path(sys.executable).parent / "doit"), "executor=dask",
                             f"dask.address={cluster.address}"], cwd=project, env=environment(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.long
def test_the_demo_runs_in_the_workers_and_makes_what_a_local_run_makes(tmp_path: Path, cluster: Cluster) -> None:
    workers = cluster.wait_for_workers(2)
    remote, local = copy_project(tmp_path / "remote"), copy_project(tmp_path / "local")
    on_dask = ("executor=dask", f"dask.address={cluster.address}")
    everything = {f"{step}:pipeline_{n}" for step in STEPS for n in (1, 2)}
    assert doit(remote, "-n", "2", *on_dask) == everything
    assert doit(local) == everything
    pids = set()
    for record in records(remote):
        assert record["executor"] == "dask" and record["pid"] in workers.values(), record["task"]
        pids.add(record["pid"])
    assert len(pids) == 2  # both workers ran steps
    for output in (local / "outputs/dev").glob("pipeline_*/*/*"):
        if output.name != "provenance.json":
            assert filecmp.cmp(output, remote / output.relative_to(local), shallow=False), output
    # The executor is not a step's parameter: switching runs nothing again, either way.
    assert doit(remote) == set() and doit(local, *on_dask) == set()


def test_a_worker_killed_mid_step_is_replaced_and_the_step_runs_again_elsewhere(tmp_path: Path,
                                                                               cluster: Cluster) -> None:
    cluster.wait_for_workers(2)
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    started = project / "started"
    run = start_blocking(project, cluster)
    wait_for(started.exists)
    killed = int(started.read_text())
    os.kill(killed, signal.SIGKILL)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    record = json.loads((project / "outputs/dev/a/train/provenance.json").read_text())
    assert record["pid"] != killed and (project / "outputs/dev/a/train/model.pkl").exists()
    assert ran(run_doit(project, "executor=dask", f"dask.address={cluster.address}")) == set()


def test_a_worker_runs_the_step_code_on_disk_now_not_code_it_imported_before(tmp_path: Path,
                                                                                  cluster: Cluster) -> None:
    cluster.wait_for_workers(2)
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    on_dask = ("executor=dask", f"dask.address={cluster.address}")
    assert doit(project, *on_dask) == all_tasks(("a",))  # both workers import tiny_steps
    edit(project / "tiny_steps.py", "|alpha={params['alpha']}", "|alpha={params['alpha']}|edited")
    assert doit(project, *on_dask) == {"train:a", "evaluate:a", "predict:a"}  # a new model: downstream too
    assert (project / "outputs/dev/a/train/model.pkl").read_text().endswith("|edited|0")
    assert doit(project, *on_dask) == set()
    # Another project on the same cluster, with a module of the same name: each runs its own code.
    other = tiny_project(tmp_path / "other", pipelines=("a",))
    edit(other / "tiny_steps.py", "|alpha={params['alpha']}", "|alpha={params['alpha']}|other")
    assert doit(other, *on_dask) == all_tasks(("a",))
    assert (other / "outputs/dev/a/train/model.pkl").read_text().endswith("|other|0")
    assert doit(project, "-a", "train:a", *on_dask) >= {"train:a"}
    assert (project / "outputs/dev/a/train/model.pkl").read_text().endswith("|edited|0")


def test_a_signal_cancels_the_step_on_the_cluster_and_publishes_nothing(tmp_path: Path, cluster: Cluster) -> None:
    cluster.wait_for_workers(2)
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    run = start_blocking(project, cluster)
    wait_for((project / "started").exists)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130 and "Traceback" not in out + err, out + err
    assert "SIGINT received" in err
    assert not (project / "outputs/dev/a/train/model.pkl").exists()
    why = run_doit(project, "why", "train:a")
    assert "failed last time" in why.stdout or "never made" in why.stdout, why.stdout


def test_a_worker_that_does_not_share_the_outputs_folder_is_refused_before_any_step(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    (project / "outputs").mkdir()
    folder = tmp_path / "cluster"
    folder.mkdir()
    cluster = Cluster(folder)
    try:
        # This worker sees an empty folder where the project's outputs are: its own file system there.
        hidden = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                  f"mount -t tmpfs none {project / 'outputs'} && exec \"$0\" \"$@\"")
        cluster.worker(hidden)
        try:
            cluster.wait_for_workers(1)
        except Exception:
            pytest.skip("this machine cannot give a process its own mount namespace (unshare)")
        result = run_doit(project, "executor=dask", f"dask.address={cluster.address}")
    finally:
        cluster.stop()
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if "does not see" in line)
    assert f"does not see this project's outputs at {project.resolve() / 'outputs/dev'}" in line
    assert "a file system they share with doit" in line
    assert not (project / "outputs/dev/a/prepare/features.csv").exists()


def test_bad_dask_settings_and_an_absent_scheduler_are_one_line(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    for words, says in ((["executor=spark"], "executor: 'spark' is not an executor; choose one of: local, dask"),
                        (["executor=dask", "dask.workers=0"], "dask.workers: '0' must be a whole number"),
                        (["executor=dask", "dask.timeout=0"], "dask.timeout: '0' must be the seconds")):
        result = run_doit(project, *words)
        assert result.returncode != 0 and result.stderr.startswith(f"mlops: error: {says}"), result.stderr
    nonsense = run_doit(project, "executor=dask", "dask.address=nonsense", "dask.timeout=1")
    assert nonsense.returncode != 0 and "Traceback" not in nonsense.stdout + nonsense.stderr
    assert "the Dask scheduler nonsense cannot be reached" in nonsense.stdout
    closed = f"tcp://127.0.0.1:{free_port()}"
    result = run_doit(project, "executor=dask", f"dask.address={closed}", "dask.timeout=1")
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert f"the Dask scheduler {closed} cannot be reached" in result.stdout
    assert not (project / "outputs/dev/a/prepare").exists()


def test_without_an_address_a_local_cluster_runs_the_steps_and_stops_with_the_command(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project")
    result = run_doit(project, "-n", "2", "executor=dask", "dask.workers=2")
    assert result.returncode == 0, result.stderr
    assert len(ran(result)) == 8
    pids = {record["pid"] for record in records(project)}
    assert pids and all(not Path(f"/proc/{pid}").exists() for pid in pids)  # its workers ended with it
    # A sweep's variants are steps like any other.
    swept = doit(project, "-n", "2", "executor=dask", "pipelines.a.train.alpha=0.1,0.3")
    assert swept == {f"{kind}:a@alpha_{alpha}" for kind in ("train", "evaluate", "predict") for alpha in ("0.1", "0.3")}


def test_a_worker_drops_a_module_rewritten_with_the_same_size_and_timestamps(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             settled: None) -> None:
    from mlops.common.secrets import known
    from mlops.integrations import worker
    from mlops.plan import StepCall

    project = tmp_path / "project"
    (project / "out").mkdir(parents=True)
    module = project / "worker_steps.py"
    module.write_text("VALUE = 'one'\n\n\ndef step(inputs, params, outputs):\n    outputs['out'].write_text(VALUE)\n")
    monkeypatch.chdir(tmp_path)  # set back after the test; the worker works in the project folder
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(worker, "_ran", {})
    monkeypatch.setattr(worker, "_projects", [])
    monkeypatch.delitem(sys.modules, "worker_steps", raising=False)
    out = project / "out" / "result.txt"
    call = StepCall("step:p", "worker_steps.step", {}, {}, {"out": str(out)})
    for value in ("one", "two"):
        before = module.stat()
        module.write_text(module.read_text().replace("'one'", f"'{value}'"))  # the same size
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime: the ctime tells
        assert "reads" in worker.run_in_project(str(project), call, known())
        assert out.read_text() == value  # the code on disk now, not the module imported for the last step
    sys.modules.pop("worker_steps", None)


SECRET = "dask-secret-4c1d9e"
SECRET_STEPS = '''
def train(inputs, params, outputs):
    if params["fail"]:
        raise ConnectionError(f"401 for {params['header']} at {params['db_url']}")
    outputs["model"].write_text(f"{inputs['features'].read_text()}|{len(params['header'])}|{len(params['db_url'])}")
'''


def test_a_worker_masks_records_and_compares_secrets_as_doit_does(tmp_path: Path) -> None:
    """On a worker whose `mlops` is the project's own (the README's layout: the worker drops and loads it anew)."""
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    shutil.copytree(REPO / "mlops", project / "mlops", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "secret_steps.py").write_text(SECRET_STEPS)
    edit(project / "conf/pipelines/a.yaml", "  fn: tiny_steps.train\n",
         "  fn: secret_steps.train\n  fail: false\n  header: Bearer ${.api_token}\n"
         "  db_url: postgres://svc:${oc.env:MLOPS_DB_PW}@host/db\n")
    (tmp_path / "cluster").mkdir()
    cluster = Cluster(tmp_path / "cluster")
    try:
        cluster.worker(prefix=("env", f"PYTHONPATH={project}"))
        cluster.wait_for_workers(1)
        env = {"MLOPS_TEST_TOKEN": SECRET, "MLOPS_DB_PW": SECRET[::-1]}
        on_dask = ("executor=dask", f"dask.address={cluster.address}")
        assert ran(run_doit(project, *on_dask, env=env)) == all_tasks(("a",))
        assert ran(run_doit(project, *on_dask, env=env)) == set()  # recorded as compared: no rerun
        failed = run_doit(project, *on_dask, "pipelines.a.train.fail=true", env=env)
    finally:
        cluster.stop()
    said = failed.stdout + failed.stderr
    assert failed.returncode == 1 and "ConnectionError: 401 for Bearer ******** at postgres://svc:********@host" in said
    assert "secret_steps.py\", line 4, in train" in said and "/mlops/" not in said  # the step's frames only
    for secret in (SECRET, SECRET[::-1]):
        assert secret not in said
        for path in project.rglob("*"):
            assert not path.is_file() or secret.encode() not in path.read_bytes(), path
