"""Where steps run: 8 independent CPU-bound pipelines, run locally one step at a time, with `doit -n 2`
(doit's worker processes), and on Dask with 2 workers (a local cluster the command starts, and a running
`dask scheduler` with two `dask worker` processes). Each run is a first run on a fresh copy.

Run with the project's Python (the dask extra installed); writes benchmarks/EXECUTORS.md:

    python benchmarks/executors.py [--repeats 3] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from run import machine, revision

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PIPELINES = 8
STEPS_MODULE = '''\
"""Benchmark steps: train burns the CPU for a fixed amount of work; the others only move a few bytes."""


def prepare(inputs, params, outputs):
    outputs["features"].write_text(str(params["seed"]))


def train(inputs, params, outputs):
    total = int(inputs["features"].read_text())
    for i in range(params["work"]):  # pure Python: one core, whatever the threads
        total = (total * 31 + i) % 1_000_003
    outputs["model"].write_text(str(total))


def evaluate(inputs, params, outputs):
    outputs["metrics"].write_text('{"score": %s}' % inputs["model"].read_text())


def predict(inputs, params, outputs):
    outputs["forecast"].write_text(params["date"] + "," + inputs["model"].read_text())
'''
PIPELINE = '''\
prepare: {{fn: cpu_steps.prepare, seed: {seed}}}
train: {{fn: cpu_steps.train, work: {work}}}
evaluate: {{fn: cpu_steps.evaluate}}
predict: {{fn: cpu_steps.predict}}
'''


def project(folder: Path, work: int) -> Path:
    """Write a project of 8 pipelines whose train steps each do `work` iterations."""
    (folder / "conf" / "pipelines").mkdir(parents=True)
    for name in ("dodo.py", "pyproject.toml"):
        shutil.copy2(REPO / name, folder / name)
    shutil.copytree(REPO / "conf" / "env", folder / "conf" / "env")
    config = (REPO / "conf" / "config.yaml").read_text()
    config = config.replace("tracking:\n  use: true\n", "tracking:\n  use: false\n")  # measured apart
    (folder / "conf" / "config.yaml").write_text(config)
    (folder / "cpu_steps.py").write_text(STEPS_MODULE)
    for index in range(PIPELINES):
        (folder / "conf" / "pipelines" / f"p{index}.yaml").write_text(PIPELINE.format(seed=index, work=work))
    return folder


def doit(folder: Path, *args: str) -> float:
    """Run `python -m doit ARGS` in the project; return its seconds (every step must have run)."""
    env = {**os.environ, "PYTHONPATH": str(folder), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "doit", *args], cwd=folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    ran = sum(1 for line in done.stdout.splitlines() if line.startswith(".  "))
    if done.returncode != 0 or ran != 4 * PIPELINES:
        sys.exit(f"doit {' '.join(args)} failed (ran {ran}): {done.stdout[-400:]}{done.stderr[-400:]}")
    return seconds


def calibrate(seconds: float) -> int:
    """Return the iterations of train's loop that take about `seconds` here."""
    work, start = 2_000_000, time.perf_counter()
    total = 0
    for i in range(work):
        total = (total * 31 + i) % 1_000_003
    return int(work * seconds / (time.perf_counter() - start))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_cluster(folder: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """Start `dask scheduler` and two `dask worker` processes on 127.0.0.1; return the address and processes."""
    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": folder, "start_new_session": True}
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                                   "--no-dashboard"], **quiet)]  # type: ignore[call-overload]
    processes += [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard"], **quiet)  # type: ignore[call-overload]
                  for _ in range(2)]
    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    return address, processes


VARIANTS = {
    "local, one step at a time (`doit`)": lambda address: (),
    "local, `doit -n 2` (doit's worker processes)": lambda address: ("-n", "2"),
    "Dask, local cluster of 2 started by the command (`doit -n 2 executor=dask`)":
        lambda address: ("-n", "2", "executor=dask", "dask.workers=2"),
    "Dask, running scheduler and 2 workers (`doit -n 2 executor=dask dask.address=...`)":
        lambda address: ("-n", "2", "executor=dask", f"dask.address={address}"),
}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant; medians reported (default: 3)")
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds of each train step (default: 1.0)")
    parser.add_argument("--output", type=Path, default=HERE / "EXECUTORS.md")
    args = parser.parse_args(argv)
    started, clock = datetime.now(UTC), time.perf_counter()
    work = calibrate(args.seconds)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as scratch:
        address, cluster = start_cluster(Path(scratch))
        try:
            for repeat in range(args.repeats):
                for index, (name, words) in enumerate(VARIANTS.items()):
                    folder = project(Path(scratch) / f"{repeat}-{index}", work)
                    times[name].append(doit(folder, *words(address)))
        finally:
            for process in cluster:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    base, processes, started_cluster, running = (statistics.median(times[name]) for name in VARIANTS)
    rows = [f"| {name} | {statistics.median(seconds):.2f} | {statistics.median(seconds) / base:.2f} |"
            for name, seconds in times.items()]
    text = "\n".join([
        "# Benchmark: where steps run", "",
        f"- Command: `{shlex.join(['python', 'benchmarks/executors.py', *argv])}`",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; took {(time.perf_counter() - clock) / 60:.1f} min",
        f"- Machine: {machine()}",
        f"- Versions: Python {sys.version.split()[0]}, doit {metadata.version('doit')}, "
        f"dask {metadata.version('dask')}, distributed {metadata.version('distributed')}",
        f"- Repository: {revision()}", "",
        f"{PIPELINES} independent pipelines of 4 steps; each train step is {args.seconds:.1f} s of pure-Python CPU "
        f"work ({work} iterations), the other steps move a few bytes. Each run is a first run on a fresh copy "
        f"(`python -m doit`, so interpreter start-up is included); medians of {args.repeats}.", "",
        "| variant | seconds | ratio to one step at a time |",
        "| --- | ---: | ---: |", *rows, "",
        "## Notes", "",
        f"This machine has 2 cores: {PIPELINES} s of CPU work takes at best {PIPELINES / 2:.0f} s on two, plus "
        "interpreter start-up and doit's own work. doit's worker processes come close "
        f"({processes:.2f} s). Two running Dask workers take {running - processes:.2f} s more for the "
        f"{4 * PIPELINES} steps, {1000 * (running - processes) / (4 * PIPELINES):.0f} ms a step: each step is "
        "a round trip through the scheduler, and each worker stats the project's modules before each step (to "
        "import them afresh when one changed). A local cluster "
        f"started by the command adds {started_cluster - running:.2f} s: starting a scheduler and two worker "
        "processes, and asking each whether it sees the outputs folder. On one machine Dask buys nothing over "
        "`doit -n`; its use is running the same steps on many machines, with no change to them.", ""])
    args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
