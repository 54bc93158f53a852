"""Nothing lost: a killed run keeps what finished, and never leaves half an output behind."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import copy_project, ran, run_doit, start_doit, wait_for
from mlops.state.store import read_state

STEPS_MODULE = '''\
"""Steps for durability tests: train writes half its model, then waits for its gate file to appear."""
import time
from pathlib import Path


def prepare(inputs, params, outputs):
    outputs["features"].write_text("features")


def train(inputs, params, outputs):
    with open(outputs["model"], "w") as model:
        model.write("partial model...")
        model.flush()
        deadline = time.monotonic() + 120
        while params["gate"] and not Path(params["gate"]).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        model.write(f"complete, seed {params['seed']}")


def evaluate(inputs, params, outputs):
    outputs["metrics"].write_text(inputs["model"].read_text())


def predict(inputs, params, outputs):
    outputs["forecast"].write_text(inputs["model"].read_text())


def gated_evaluate(inputs, params, outputs):
    outputs["metrics"].write_text(inputs["model"].read_text())
    deadline = time.monotonic() + 120
    while not Path("gate.evaluate").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def gated_predict(inputs, params, outputs):
    outputs["forecast"].write_text(params["date"])
    deadline = time.monotonic() + 120
    while not Path(f"gate.{params['date']}").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
'''

PIPELINE = '''\
prepare: {{fn: slow_steps.prepare}}
train: {{fn: slow_steps.train, gate: "{gate}", seed: 1}}
evaluate: {{fn: slow_steps.evaluate}}
predict: {{fn: slow_steps.predict}}
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path / "project")
    shutil.rmtree(root / "conf" / "pipelines")
    (root / "conf" / "pipelines").mkdir()
    (root / "slow_steps.py").write_text(STEPS_MODULE)
    (root / "conf" / "pipelines" / "fast.yaml").write_text(PIPELINE.format(gate=""))
    # slow's train waits until the test opens its gate (or the run is killed)
    (root / "conf" / "pipelines" / "slow.yaml").write_text(PIPELINE.format(gate="gate.slow"))
    return root


def open_gate(project: Path) -> None:
    (project / "gate.slow").touch()


def slow_step_started(project: Path) -> bool:
    return any((project / "outputs" / "dev" / "slow" / "train").glob(".staging-*-model-model.pkl"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_run_keeps_finished_steps_and_leaves_no_partial_output(project: Path, sig) -> None:
    run = start_doit(project)
    wait_for(lambda: slow_step_started(project))
    os.kill(run.pid, sig)
    run.wait(timeout=30)
    model = project / "outputs" / "dev" / "slow" / "train" / "model.pkl"
    assert not model.exists(), "a killed step must leave nothing at its target"

    open_gate(project)
    again = run_doit(project)
    assert again.returncode == 0, again.stderr
    assert ran(again) == {"train:slow", "evaluate:fast", "evaluate:slow", "predict:fast", "predict:slow"}
    assert model.read_text() == "partial model...complete, seed 1"
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.pkl", "provenance.json"], \
        "no staging folder may be left"


def test_a_killed_rerun_keeps_the_previous_complete_output(project: Path) -> None:
    open_gate(project)
    assert run_doit(project).returncode == 0
    (project / "gate.slow").unlink()
    model = project / "outputs" / "dev" / "slow" / "train" / "model.pkl"
    run = start_doit(project, "pipelines.slow.train.seed=2")
    wait_for(lambda: slow_step_started(project))
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    assert model.read_text() == "partial model...complete, seed 1"
    why = run_doit(project, "why", "train:slow", "pipelines.slow.train.seed=2")
    assert why.stdout.splitlines() == ["train:slow: config pipelines.slow.train.seed: 1 -> 2"]


def test_a_failing_step_leaves_no_output_and_independent_pipelines_still_run(project: Path) -> None:
    # a gate that is not a path: train raises TypeError
    (project / "conf" / "pipelines" / "slow.yaml").write_text(PIPELINE.replace('"{gate}"', "{{oops: 1}}").format())
    result = run_doit(project, "--continue")
    assert result.returncode != 0
    assert ran(result) >= {"train:fast", "evaluate:fast", "predict:fast", "train:slow"}
    assert "evaluate:slow" not in ran(result)
    assert list((project / "outputs" / "dev" / "slow" / "train").iterdir()) == []
    assert "train:slow: no record of a successful run" in run_doit(project, "why", "train:slow").stdout


def replaced_with_same_stat(path: Path, text: str) -> None:
    """Put `text` (of the same size) in place of `path` by a rename, keeping its mtime."""
    stat = path.stat()
    other = path.with_name("replacement")
    other.write_text(text)
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, path)
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize("edit", [
    lambda path: path.write_text(path.read_text()[:5]),
    lambda path: path.write_text(path.read_text().replace("seed 1", "seed 9")),
    lambda path: replaced_with_same_stat(path, path.read_text().replace("seed 1", "seed 9")),
], ids=["truncated", "same-size-edit", "replaced-same-size-and-mtime"])
def test_an_output_edited_by_hand_is_made_again(project: Path, edit) -> None:
    open_gate(project)
    assert run_doit(project).returncode == 0
    model = project / "outputs" / "dev" / "slow" / "train" / "model.pkl"
    edit(model)
    why = run_doit(project, "why", "train:slow")
    assert why.stdout == "train:slow: output changed since the step made it: outputs/dev/slow/train/model.pkl\n"
    again = run_doit(project)
    assert "train:slow" in ran(again)
    assert model.read_text() == "partial model...complete, seed 1"


def test_a_touched_output_is_still_up_to_date(project: Path) -> None:
    open_gate(project)
    assert run_doit(project).returncode == 0
    model = project / "outputs" / "dev" / "slow" / "train" / "model.pkl"
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**10))
    assert ran(run_doit(project)) == set()


@pytest.mark.long
def test_the_state_survives_twenty_random_kills(project: Path) -> None:
    for index in range(6):
        (project / "conf" / "pipelines" / f"p{index}.yaml").write_text(PIPELINE.format(gate=""))
    (project / "conf" / "pipelines" / "slow.yaml").unlink()
    state = project / "outputs" / "dev" / ".doit-state.json"
    chance = random.Random(20)
    for _ in range(20):
        before = set(read_state(str(state), f"{state}.journal"))
        run = start_doit(project)
        time.sleep(chance.uniform(0.15, 0.5))  # random on purpose: anywhere from start-up to the last save
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        after = set(read_state(str(state), f"{state}.journal"))  # the state opens, as the store reads it
        assert before <= after, f"records lost: {before - after}"
    assert run_doit(project, "why").returncode == 0
    assert run_doit(project).returncode == 0
    final = run_doit(project)
    assert final.returncode == 0 and ran(final) == set()


def test_sigint_stops_the_run_and_keeps_finished_steps(project: Path) -> None:
    run = start_doit(project)
    wait_for(lambda: slow_step_started(project))
    os.kill(run.pid, signal.SIGINT)
    run.wait(timeout=30)
    assert run.returncode != 0
    assert not (project / "outputs" / "dev" / "slow" / "train" / "model.pkl").exists()
    assert not list((project / "outputs" / "dev" / "slow" / "train").glob(".staging-*"))
    open_gate(project)
    again = run_doit(project)
    assert "train:fast" not in ran(again) and "train:slow" in ran(again)


def test_outputs_never_land_outside_the_outputs_root(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "metrics.json").write_text("not ours")
    (project / "outputs" / "dev" / "fast").mkdir(parents=True)
    (project / "outputs" / "dev" / "fast" / "evaluate").symlink_to(elsewhere)
    result = run_doit(project, "evaluate:fast")
    assert result.returncode != 0
    assert "outputs/dev/fast/evaluate/metrics.json resolves outside outputs/" in result.stdout + result.stderr
    assert [p.name for p in elsewhere.iterdir()] == ["metrics.json"]
    run_doit(project, "clean", "evaluate:fast")
    assert (elsewhere / "metrics.json").read_text() == "not ours"


SPAWNING_STEPS = '''\
import os
import subprocess
import time


def train(inputs, params, outputs):
    child = subprocess.Popen(["sleep", "300"])
    # Written whole, then renamed: the test reads the pid as soon as the file is there.
    written = outputs["model"].parent / "child.pid.partial"
    written.write_text(str(child.pid))
    os.replace(written, written.with_suffix(""))
    time.sleep(300)
'''


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_steps_children_and_sets_the_exit_code(project: Path, sig, code) -> None:
    (project / "spawning_steps.py").write_text(SPAWNING_STEPS)
    (project / "conf" / "pipelines" / "slow.yaml").write_text(
        PIPELINE.format(gate="").replace("slow_steps.train", "spawning_steps.train"))
    run = start_doit(project, "train:slow")
    pid_file = project / "outputs" / "dev" / "slow" / "train" / "child.pid"
    wait_for(pid_file.exists)
    child = int(pid_file.read_text())
    assert alive(child)
    os.kill(run.pid, sig)
    assert run.wait(timeout=30) == code
    wait_for(lambda: not alive(child), timeout=10)
    assert "finished steps stay recorded" in run.stderr.read()
    assert ran(run_doit(project, "prepare:slow")) == set()


FINALIZED_STEPS = '''
import os, signal, weakref

import slow_steps


class Holder:
    pass


def prepare(inputs, params, outputs):
    holder = Holder()
    weakref.finalize(holder, lambda: (os.kill(os.getpid(), signal.SIGTERM), [n for n in range(3)]))
    del holder  # its finalizer runs now, and the signal arrives while it runs
    slow_steps.prepare(inputs, params, outputs)


def blocked_prepare(inputs, params, outputs):
    prepare(inputs, params, outputs)
    with open("blocked", "w"):
        pass
    signal.pause()  # until another signal
'''


def test_a_signal_that_arrives_while_a_finalizer_runs_still_stops_the_command(project: Path) -> None:
    (project / "finalized_steps.py").write_text(FINALIZED_STEPS)
    (project / "conf" / "pipelines" / "fast.yaml").write_text(
        PIPELINE.format(gate="").replace("slow_steps.prepare", "finalized_steps.prepare"))
    (project / "conf" / "pipelines" / "slow.yaml").unlink()
    result = run_doit(project)
    assert result.returncode == 143, result.stdout + result.stderr
    assert "mlops: SIGTERM received, stopping" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert ran(result) == set() and not (project / "outputs/dev/fast/prepare/features.csv").exists()


def test_after_a_lost_stop_a_second_signal_stops_the_command_at_once(project: Path) -> None:
    (project / "finalized_steps.py").write_text(FINALIZED_STEPS)
    (project / "conf" / "pipelines" / "fast.yaml").write_text(
        PIPELINE.format(gate="").replace("slow_steps.prepare", "finalized_steps.blocked_prepare"))
    (project / "conf" / "pipelines" / "slow.yaml").unlink()
    run = start_doit(project)
    wait_for((project / "blocked").exists)
    os.kill(run.pid, signal.SIGTERM)
    assert run.wait(timeout=30) == 143
    assert run.stderr is not None and "Traceback" not in run.stderr.read()


SIGNAL_ON_IMPORT = '''
import os, signal, sys


class SignalOnImport:
    """Send this process SIGINT when it first imports the module named in MLOPS_TEST_SIGNAL_ON."""

    def find_spec(self, name, path=None, target=None):
        if name == os.environ["MLOPS_TEST_SIGNAL_ON"]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, SignalOnImport())
'''


@pytest.mark.parametrize("module", ["hydra", "slow_steps"])
def test_ctrl_c_while_the_command_starts_is_one_line(project: Path, tmp_path: Path, module: str) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SIGNAL_ON_IMPORT)
    result = run_doit(project, env={"PYTHONPATH": str(hook), "MLOPS_TEST_SIGNAL_ON": module})
    assert result.returncode == 130, result.stderr
    assert "mlops: SIGINT received, stopping" in result.stderr and "Traceback" not in result.stderr


def test_concurrent_runs_on_disjoint_tasks_both_succeed_and_keep_their_records(project: Path) -> None:
    slow = start_doit(project, "predict:slow")
    wait_for(lambda: slow_step_started(project))
    fast = start_doit(project, "predict:fast")
    assert fast.wait(timeout=60) == 0  # it ran and saved all its records while slow was running
    open_gate(project)
    assert slow.wait(timeout=60) == 0
    state = project / "outputs" / "dev" / ".doit-state.json"
    recorded = set(read_state(str(state), f"{state}.journal"))
    assert {f"{step}:{name}" for step in ("prepare", "train", "predict") for name in ("fast", "slow")} <= recorded
    assert ran(run_doit(project)) == {"evaluate:fast", "evaluate:slow"}


def test_a_second_run_of_the_same_task_waits_and_finds_it_made(project: Path) -> None:
    first = start_doit(project, "train:slow")
    wait_for(lambda: slow_step_started(project))
    second = start_doit(project, "train:slow")
    assert second.stderr is not None
    waiting = second.stderr.readline()  # blocks until the second run reaches the lock the first holds
    assert f"train:slow is running in process {first.pid}; waiting for it" in waiting
    open_gate(project)
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    assert second.stdout is not None
    # Its own line, without the `.` of a step that ran; and the report counts it apart.
    assert "~  train:slow (made by another run meanwhile, as this run would make it)\n" in second.stdout.read()
    assert "0 ran, 1 up to date, 1 made by another run, 0 failed" in second.stderr.read()
    model = project / "outputs" / "dev" / "slow" / "train" / "model.pkl"
    assert model.read_text() == "partial model...complete, seed 1"
    assert ran(run_doit(project, "train:slow")) == set()


def test_a_step_another_run_remade_exactly_as_it_was_is_taken_not_made_again(project: Path) -> None:
    open_gate(project)
    assert run_doit(project, "train:slow").returncode == 0
    (project / "gate.slow").unlink()
    model = project / "outputs" / "dev" / "slow" / "train" / "model.pkl"
    model.write_text("edited by hand")  # both runs find the step to make, and make the record it had
    first = start_doit(project, "train:slow")
    wait_for(lambda: slow_step_started(project))
    second = start_doit(project, "train:slow")
    assert second.stderr is not None
    assert f"train:slow is running in process {first.pid}; waiting for it" in second.stderr.readline()
    open_gate(project)
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    assert second.stdout is not None
    assert "~  train:slow (made by another run meanwhile, as this run would make it)\n" in second.stdout.read()
    assert model.read_text() == "partial model...complete, seed 1"


def test_a_second_run_with_another_config_waits_and_then_runs_the_step_itself(project: Path) -> None:
    first = start_doit(project, "train:slow")
    wait_for(lambda: slow_step_started(project))
    second = start_doit(project, "train:slow", "pipelines.slow.train.seed=2")
    assert second.stderr is not None
    assert f"train:slow is running in process {first.pid}; waiting for it" in second.stderr.readline()
    open_gate(project)
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    said = second.stderr.read()
    assert "it is up to date" not in said
    assert ("train:slow was made by another run meanwhile, but not as this run would make it "
            "(config pipelines.slow.train.seed: 1 -> 2); this run makes it again, replacing that output") in said
    assert "train:slow (after waiting for another run of it)" in ran_of(second, whole=True)
    model = project / "outputs" / "dev" / "slow" / "train" / "model.pkl"
    assert model.read_text() == "partial model...complete, seed 2"
    assert run_doit(project, "why", "train:slow", "pipelines.slow.train.seed=2").stdout == "train:slow: up to date\n"


def ran_of(process: subprocess.Popen[str], whole: bool = False) -> set[str]:
    """Return the tasks a finished process reports it ran (with the rest of their lines, if `whole`)."""
    assert process.stdout is not None
    lines = [line[3:] for line in process.stdout.read().splitlines() if line.startswith(".  ")]
    return set(lines) if whole else {line.split()[0] for line in lines}


@pytest.mark.parametrize("workers", [(), ("-n", "2")])
def test_concurrent_runs_of_two_dates_keep_both_dates_records(project: Path, workers: tuple[str, ...]) -> None:
    pipeline = project / "conf" / "pipelines" / "fast.yaml"
    pipeline.write_text(pipeline.read_text().replace("slow_steps.predict", "slow_steps.gated_predict"))
    folder = project / "outputs" / "dev" / "fast" / "predict"
    # With doit's worker processes, doit saves in the main process, after the worker let the lock go.
    first = start_doit(project, *workers, "predict:fast", "--date", "2026-05-01")
    wait_for(lambda: any(folder.glob(".staging-*-forecast-forecast_2026-05-01.csv")))
    second = start_doit(project, "predict:fast", "--date", "2026-05-02")
    assert second.stderr is not None
    assert "predict:fast is running in process" in second.stderr.readline()  # it waits for the first
    for date in ("2026-05-01", "2026-05-02"):
        (project / f"gate.{date}").touch()
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    for date in ("2026-05-01", "2026-05-02"):
        why = run_doit(project, "why", "predict:fast", f"date={date}")
        assert why.stdout == "predict:fast: up to date\n", date


def test_a_worker_process_saves_its_record_before_another_run_takes_the_lock(project: Path) -> None:
    first = start_doit(project, "-n", "2", "train:slow")
    wait_for(lambda: slow_step_started(project))
    second = start_doit(project, "train:slow")
    assert second.stderr is not None
    assert "train:slow is running in process" in second.stderr.readline()
    open_gate(project)
    assert first.wait(timeout=60) == 0 and second.wait(timeout=60) == 0
    assert "made by another run meanwhile" in second.stderr.read()


def test_an_input_edited_while_its_step_runs_is_never_recorded_as_seen(project: Path) -> None:
    extra = project / "extra.txt"
    extra.write_text("before")
    words = ("train:slow", "+pipelines.slow.train.inputs.extra=extra.txt")
    run = start_doit(project, *words)
    wait_for(lambda: slow_step_started(project))
    extra.write_text("after!")  # the step is past reading its inputs
    open_gate(project)
    assert run.wait(timeout=60) != 0
    assert "extra.txt changed while the step ran; it will run again on the new content" in run.stdout.read()
    assert "train:slow" in ran(run_doit(project, *words))


def test_concurrent_runs_with_different_configs_never_leave_a_stale_downstream_output(project: Path) -> None:
    pipeline = project / "conf" / "pipelines" / "fast.yaml"
    pipeline.write_text(pipeline.read_text().replace("slow_steps.evaluate", "slow_steps.gated_evaluate"))
    folder = project / "outputs" / "dev" / "fast" / "evaluate"
    first = start_doit(project, "evaluate:fast", "pipelines.fast.train.seed=3")
    wait_for(lambda: any(folder.glob(".staging-*-metrics-metrics.json")))
    second = start_doit(project, "evaluate:fast", "pipelines.fast.train.seed=4")
    assert second.stderr is not None
    assert "evaluate:fast is running in process" in second.stderr.readline()  # its train already ran
    (project / "gate.evaluate").touch()
    assert second.wait(timeout=60) == 0
    assert first.wait(timeout=60) != 0  # its model was replaced under it: not recorded
    assert (folder / "metrics.json").read_text() == "partial model...complete, seed 4"
    why = run_doit(project, "why", "evaluate:fast", "pipelines.fast.train.seed=4")
    assert why.stdout == "evaluate:fast: up to date\n"


def test_what_a_killed_process_left_of_a_step_is_removed_with_a_message(project: Path) -> None:
    run = start_doit(project, "train:slow")
    wait_for(lambda: slow_step_started(project))
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    open_gate(project)
    again = run_doit(project, "train:slow")  # the kernel gave the dead process's lock up: no wait
    assert again.returncode == 0, again.stderr
    assert (f"train:slow: removed the unfinished outputs that process {run.pid} left "
            "(stopped before it published them)") in again.stderr
    assert "waiting" not in again.stderr
    assert not list((project / "outputs" / "dev" / "slow" / "train").glob(".staging-*"))
