"""Shared test helpers: copies of the project in tmp_path, the installed `doit` command, small step functions."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("dodo.py", "conf", "pyproject.toml")
# The console script installed with the project, as a user runs it.
DOIT = str(Path(sys.executable).parent / "doit")
STEPS = ("prepare", "train", "evaluate", "predict")

TINY_STEPS = '''\
"""Tiny steps for tests: each output is derived from its inputs and the parameters it reads."""
import json


def prepare(inputs, params, outputs):
    outputs["features"].write_text(inputs["raw"].read_text().upper() + f"x{params['scale']}")


def train(inputs, params, outputs):
    token = len(params.get("api_token", ""))
    outputs["model"].write_text(f"{inputs['features'].read_text()}|alpha={params['alpha']}|{token}")


def evaluate(inputs, params, outputs):
    outputs["metrics"].write_text(json.dumps({"length": len(inputs["model"].read_text())}))


def predict(inputs, params, outputs):
    outputs["forecast"].write_text(f"{params['date']}:{inputs['model'].read_text()}")
'''

TINY_PIPELINE = '''\
# a tiny pipeline
prepare:
  fn: tiny_steps.prepare
  inputs:
    raw: data/{name}.txt
  scale: 2
train:
  fn: tiny_steps.train
  alpha: 0.5
  api_token: ${{oc.env:MLOPS_TEST_TOKEN,""}}
  unused: 1
evaluate:
  fn: tiny_steps.evaluate
predict:
  fn: tiny_steps.predict
'''


def copy_project(dest: Path, short_series: bool = True, tracking: bool = False) -> Path:
    """Copy dodo.py, conf/ and pyproject.toml to `dest`; a short series keeps runs of the real demo quick.

    Experiment tracking stays off unless asked for: the tests of tracking turn it on."""
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            shutil.copy2(source, dest / name)
    config = dest / "conf" / "config.yaml"
    text = config.read_text()
    if short_series:
        assert "  days: 730\n" in text and "  holdout_days: 28\n" in text
        text = text.replace("  days: 730\n", "  days: 60\n").replace("  holdout_days: 28\n", "  holdout_days: 7\n")
    if not tracking:
        assert "tracking:\n  use: true\n" in text
        text = text.replace("tracking:\n  use: true\n", "tracking:\n  use: false\n")
    config.write_text(text)
    return dest


def tiny_project(dest: Path, pipelines: tuple[str, ...] = ("a", "b"), tracking: bool = False) -> Path:
    """Copy the project with the demo pipelines swapped for tiny ones, each reading data/<name>.txt."""
    root = copy_project(dest, tracking=tracking)
    shutil.rmtree(root / "conf" / "pipelines")
    (root / "conf" / "pipelines").mkdir()
    (root / "data").mkdir()
    (root / "tiny_steps.py").write_text(TINY_STEPS)
    for name in pipelines:
        (root / "conf" / "pipelines" / f"{name}.yaml").write_text(TINY_PIPELINE.format(name=name))
        (root / "data" / f"{name}.txt").write_text(f"raw {name}\n")
    return root


def all_tasks(pipelines: tuple[str, ...] = ("a", "b")) -> set[str]:
    """Return every step task of these pipelines."""
    return {f"{step}:{name}" for step in STEPS for name in pipelines}


# Tests run in parallel workers on few cores: one thread per numeric library keeps the demo's
# scikit-learn steps from spinning threads that fight the other workers for the same cores.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment of a doit subprocess: this one, one thread per numeric library, then `extra`."""
    return {**ONE_THREAD, **os.environ, **(extra or {})}


def run_doit(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `doit ARGS` in `project` in a subprocess and return the finished process."""
    return subprocess.run([DOIT, *args], cwd=project, env=environment(env), capture_output=True, text=True,
                          timeout=300)


def start_doit(project: Path, *args: str) -> subprocess.Popen[str]:
    """Start `doit ARGS` in `project` without waiting for it."""
    return subprocess.Popen([DOIT, *args], cwd=project, env=environment(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def task_marks(output: str) -> dict[str, str]:
    """Map each task name doit reported to its mark: '.' ran, '--' up to date."""
    return {match[2]: match[1] for match in re.finditer(r"^(\.|--) +(\S+)$", output, re.MULTILINE)}


def ran(result: subprocess.CompletedProcess[str]) -> set[str]:
    """Return the tasks a finished doit run executed."""
    return {name for name, mark in task_marks(result.stdout).items() if mark == "."}


def skipped(result: subprocess.CompletedProcess[str]) -> set[str]:
    """Return the tasks a finished doit run found up to date."""
    return {name for name, mark in task_marks(result.stdout).items() if mark == "--"}


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Wait until `condition()` holds (a file the process under test writes), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the process under test"
        time.sleep(0.02)


def doit(project: Path, *args: str, **env: str) -> set[str]:
    """Run `doit ARGS` (with `env` added), require success, and return the tasks it ran."""
    result = run_doit(project, *args, env=env)
    assert result.returncode == 0, result.stderr
    return ran(result)


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old`, which must be there, with `new` in a file."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def loggers(project: Path) -> list[int]:
    """Return the tracking logger processes running for a project (started by its commands)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or one that ended
            continue
        if b"mlops.integrations.logger" in words and any(str(project).encode() in word for word in words):
            found.append(int(entry.name))
    return found


def wait_for_loggers(project: Path, timeout: float = 180.0) -> None:
    """Wait until no tracking logger of the project runs (each ends once it has sent what waits)."""
    wait_for(lambda: not loggers(project), timeout)
