"""A random-kill soak of tracking: commands and loggers stopped at random moments, then every result saved is in
MLflow exactly once, in the run of its lineage, with the whole lineage's values."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from helpers import DOIT, edit, environment, loggers, run_doit, tiny_project, wait_for_loggers

KILLS = 120
SIGNALS = (signal.SIGKILL, signal.SIGKILL, signal.SIGTERM, signal.SIGINT)
ENV = {"MLFLOW_DISABLE_TELEMETRY": "true"}


def command(rng: random.Random, step: int) -> list[str]:
    """Return a random command: a run after an edit, a narrowed or dated run, a sweep, or `doit tracking`."""
    kind = rng.choice(("run", "run", "narrow", "dated", "sweep", "tracking"))
    if kind == "narrow":
        return [rng.choice(("train:a", "evaluate:b", "predict:a")), f"pipelines.a.train.alpha={rng.choice((0.5, 0.7))}"]
    if kind == "dated":
        return ["predict:b", f"date=2026-01-{rng.randint(1, 9):02d}"]
    if kind == "sweep":
        return ["pipelines.b.train.alpha=0.1,0.2"]
    if kind == "tracking":
        return ["tracking"]
    return ["-n", "2"] if step % 5 == 0 else []


@pytest.mark.soak
def test_results_are_logged_exactly_once_whatever_is_killed_when(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    rng = random.Random(20261204)
    kills = step = 0
    while kills < KILLS:
        step += 1
        assert step < 5 * KILLS, f"only {kills} kills in {step} commands"
        if rng.random() < 0.5:
            edit(project / "data/a.txt", "raw", f"raw {step}")  # new results to make
        # In a group of its own, stopped as a terminal's Ctrl-C or a CI job's cancel stops it: with `doit -n`'s
        # worker processes (a kill of doit's process alone leaves them waiting for it: doit's, not ours).
        started = subprocess.Popen([DOIT, *command(rng, step)], cwd=project, env=environment(ENV),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True)
        sent = None
        try:
            started.wait(timeout=rng.uniform(0.05, 2.5))
        except subprocess.TimeoutExpired:
            sent = rng.choice(SIGNALS)
            os.killpg(started.pid, sent)
            kills += 1
        _, err = started.communicate(timeout=300)
        # Python's own: a Ctrl-C while the interpreter still imports doit and its plugins (ours among them), before
        # any handler can be installed: every frame of ours is a module's import.
        ours = [line for line in err.splitlines() if "/mlops/" in line and line.strip().startswith("File ")]
        starting = (sent == signal.SIGINT and err.rstrip().endswith("KeyboardInterrupt")
                    and all(line.rstrip().endswith("in <module>") for line in ours))
        assert "Traceback" not in err or starting, err
        running = loggers(project)
        if running and rng.random() < 0.4:
            os.kill(rng.choice(running), signal.SIGKILL)  # a logger stopped wherever it is
            kills += 1
    wait_for_loggers(project)
    sent = run_doit(project, "tracking", env=ENV)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert not list((project / "outputs/dev/.tracking").glob("*.json"))

    client = MlflowClient(tracking_uri=f"sqlite:///{project}/outputs/dev/mlflow.db")
    experiment = client.get_experiment_by_name("demand-dev")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    logged = Counter(key for run in runs for key in run.data.tags if key.startswith("mlops.event."))
    assert set(logged.values()) == {1}, [key for key, count in logged.items() if count > 1]
    state = json.loads(run_doit(project, "dumpdb").stdout)
    saved = {made["id"] for values in state.values()
             for made in (values.get("_values_:") or {}).get("made", {}).values()}
    assert {f"mlops.event.{made}" for made in saved} <= set(logged)  # every result kept now is logged
    for run in runs:
        history = [client.get_metric_history(run.info.run_id, key) for key in run.data.metrics]
        assert all(len({(m.timestamp, m.value) for m in metric}) == len(metric) for metric in history)
        if run.data.metrics:
            assert {"prepare.scale", "train.alpha", "evaluate.fn"} <= set(run.data.params), run.info.run_name
    print(f"{kills} kills, {len(logged)} results logged in {len(runs)} runs")
