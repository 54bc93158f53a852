"""Benchmark mlops ("ours") against hand-written bare doit projects with the same DAG and file work.

Run from anywhere with the project's Python; writes benchmarks/RESULTS.md:

    python benchmarks/run.py [--pipelines 10 100 1000] [--repeats 5] [--big-gib 1]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TEMPLATES = HERE / "templates"
STEPS = ("prepare", "train", "evaluate", "predict")
VARIANTS = ("ours", "bare", "bare-json")
ALPHA, NEW_ALPHA = 1.0, 2.0
MIB, GIB = 1 << 20, 1 << 30
BIG_NOOPS = 3
JSON_BACKEND = '\nDOIT_CONFIG = {"backend": "json"}\n'
PIPELINE_YAML = """\
prepare:
  fn: bench_steps.prepare
  inputs:
    raw: data/{name}.txt
train:
  fn: bench_steps.train
  alpha: {alpha}
evaluate:
  fn: bench_steps.evaluate
predict:
  fn: bench_steps.predict
"""


@dataclass(frozen=True)
class Project:
    """A generated project folder of one variant with `pipelines` pipelines named p_0, p_1, ..."""

    folder: Path
    variant: str
    pipelines: int

    @property
    def names(self) -> list[str]:
        """Return the pipeline names."""
        return [f"p_{i}" for i in range(self.pipelines)]


@dataclass(frozen=True)
class Run:
    """One timed doit command: wall-clock seconds, the tasks it ran, and an error line if it failed."""

    seconds: float
    ran: frozenset[str]
    error: str | None


@dataclass(frozen=True)
class Scenario:
    """A state change, then one timed doit command and the tasks it should run (None: not checked)."""

    name: str
    change: Callable[[Project], None]
    expected: Callable[[Project], set[str]] | None
    args: tuple[str, ...] = ()


@dataclass
class Results:
    """Times by (group, scenario, variant), and every failed run or check."""

    times: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def record(self, group: str, scenario: Scenario, project: Project, run: Run) -> None:
        """Keep the time of a run that exited 0; note a failed run or a check that did not hold."""
        where = f"{group}, {project.variant}, {scenario.name}"
        if run.error is not None:
            self.failures.append(f"{where}: doit failed: {run.error}")
            return
        self.times.setdefault((group, scenario.name, project.variant), []).append(run.seconds)
        problem = check(run, scenario.expected(project)) if scenario.expected else None
        if problem:
            self.failures.append(f"{where}: {problem}")

    def median(self, group: str, scenario: str, variant: str) -> float | None:
        """Return the median time, or None if no run succeeded."""
        times = self.times.get((group, scenario, variant))
        return statistics.median(times) if times else None


def nothing(project: Project) -> None:
    """Leave the project as it is."""


def touch_input(project: Project) -> None:
    """Move data/p_0.txt's modification time one second forward, content unchanged."""
    path = project.folder / "data" / "p_0.txt"
    mtime = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(mtime, mtime))


def change_input(project: Project) -> None:
    """Append a line to data/p_0.txt."""
    with open(project.folder / "data" / "p_0.txt", "a") as handle:
        handle.write("changed\n")


def change_param(project: Project) -> None:
    """Change p_0's train alpha: in its pipeline file (ours) or in params.json (bare)."""
    if project.variant == "ours":
        write_pipeline(project.folder, "p_0", NEW_ALPHA)
        return
    path = project.folder / "params.json"
    params = json.loads(path.read_text())
    params["p_0"]["train"]["alpha"] = NEW_ALPHA
    path.write_text(json.dumps(params))


def all_tasks(project: Project) -> set[str]:
    """Return every task of the project."""
    return {f"{step}:{name}" for step in STEPS for name in project.names}


def no_tasks(project: Project) -> set[str]:
    """Return no task."""
    return set()


def p0_tasks(*steps: str) -> Callable[[Project], set[str]]:
    """Return a function giving pipeline p_0's tasks of the given steps."""
    return lambda project: {f"{step}:p_0" for step in steps}


SCENARIOS = (
    Scenario("first run", nothing, all_tasks),
    Scenario("no-op rerun", nothing, no_tasks),
    Scenario("touched 1 input (mtime only)", touch_input, no_tasks),
    Scenario("no-op after the touch", nothing, no_tasks),
    Scenario("changed 1 input's content", change_input, p0_tasks(*STEPS)),
    Scenario("changed 1 pipeline's param", change_param, p0_tasks("train", "evaluate", "predict")),
    Scenario("doit list", nothing, None, ("list",)),
)
BIG_FIRST = Scenario("first run", nothing, all_tasks)
BIG_TOUCHED = [Scenario(f"no-op {k} after the touch", touch_input if k == 1 else nothing, no_tasks)
               for k in range(1, BIG_NOOPS + 1)]


def make_project(folder: Path, variant: str, pipelines: int, big_bytes: int = 0) -> Project:
    """Generate a fresh project: data files, the step module, and ours' config or bare's dodo."""
    project = Project(folder, variant, pipelines)
    folder.mkdir(parents=True)
    write_data(project, big_bytes)
    shutil.copy(TEMPLATES / "bench_steps.py", folder / "bench_steps.py")
    if variant == "ours":
        write_ours(project)
    else:
        write_bare(project, json_backend=variant == "bare-json")
    return project


def write_data(project: Project, big_bytes: int) -> None:
    """Write a few hundred bytes per pipeline to data/p_<i>.txt; p_0's is `big_bytes` long if not 0."""
    data = project.folder / "data"
    data.mkdir()
    for i, name in enumerate(project.names):
        rows = "".join(f"{i},{j},{(i * 31 + j * 17) % 97}\n" for j in range(40))
        (data / f"{name}.txt").write_text(rows)
    if big_bytes:
        write_big_file(data / "p_0.txt", big_bytes)


def write_big_file(path: Path, size: int) -> None:
    """Write `size` bytes by repeating one random 1 MiB block."""
    block = os.urandom(MIB)
    with open(path, "wb") as handle:
        for offset in range(0, size, MIB):
            handle.write(block[: min(MIB, size - offset)])


def write_ours(project: Project) -> None:
    """Copy dodo.py, pyproject.toml and the base and env config from the repo; write the pipeline files."""
    folder = project.folder
    for name in ("dodo.py", "pyproject.toml"):
        shutil.copy(REPO / name, folder / name)
    (folder / "conf" / "pipelines").mkdir(parents=True)
    config = (REPO / "conf" / "config.yaml").read_text()
    # Bare doit tracks no experiments: ours neither (benchmarks/tracking.py measures tracking).
    config = config.replace("tracking:\n  use: true\n", "tracking:\n  use: false\n")
    (folder / "conf" / "config.yaml").write_text(config)
    shutil.copytree(REPO / "conf" / "env", folder / "conf" / "env")
    for name in project.names:
        write_pipeline(folder, name, ALPHA)


def write_pipeline(folder: Path, name: str, alpha: float) -> None:
    """Write conf/pipelines/<name>.yaml with the four bench steps."""
    (folder / "conf" / "pipelines" / f"{name}.yaml").write_text(PIPELINE_YAML.format(name=name, alpha=alpha))


def write_bare(project: Project, json_backend: bool) -> None:
    """Write the hand-written dodo.py (json backend if asked) and params.json."""
    dodo = (TEMPLATES / "bare_dodo.py").read_text() + (JSON_BACKEND if json_backend else "")
    (project.folder / "dodo.py").write_text(dodo)
    params = {name: {"train": {"alpha": ALPHA}} for name in project.names}
    (project.folder / "params.json").write_text(json.dumps(params))


def doit(project: Project, args: Sequence[str] = ()) -> Run:
    """Run `python -m doit ARGS` in the project folder and time it."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "doit", *args], cwd=project.folder,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    ran = frozenset(line[3:].strip() for line in done.stdout.splitlines() if line.startswith(".  "))
    lines = (done.stderr or done.stdout).strip().splitlines()
    error = None if done.returncode == 0 else f"exit {done.returncode}: {lines[-1] if lines else ''}"
    return Run(seconds, ran, error)


def check(run: Run, expected: set[str]) -> str | None:
    """Describe how the tasks that ran differ from the expected ones, or None if they match."""
    missing, extra = sorted(expected - run.ran), sorted(run.ran - expected)
    if not missing and not extra:
        return None
    return (f"expected {len(expected)} tasks to run, {len(run.ran)} ran; "
            f"missing {missing[:5]}, unexpected {extra[:5]}")


def run_scenarios(results: Results, group: str, project: Project, scenarios: Sequence[Scenario]) -> None:
    """Apply and time each scenario in order on one project, printing progress."""
    for scenario in scenarios:
        scenario.change(project)
        run = doit(project, scenario.args)
        results.record(group, scenario, project, run)
        status = "FAILED" if run.error else f"{run.seconds:.3f} s"
        print(f"  {group:>6} {project.variant:<9} {scenario.name:<30} {status}", file=sys.stderr)


def bench_pipelines(results: Results, workdir: Path, pipelines: int, repeats: int) -> None:
    """Run every scenario on a fresh project per variant and repeat, variants interleaved."""
    for repeat in range(repeats):
        for variant in VARIANTS:
            folder = workdir / f"p{pipelines}-r{repeat}-{variant}"
            project = make_project(folder, variant, pipelines)
            try:
                run_scenarios(results, group_name(pipelines), project, SCENARIOS)
            finally:
                shutil.rmtree(folder, ignore_errors=True)


def bench_big(results: Results, workdir: Path, big_bytes: int, repeats: int) -> None:
    """Per variant: one first run of a 10-pipeline project with a big p_0 input, then touch + no-ops, repeated."""
    for variant in VARIANTS:
        folder = workdir / f"big-{variant}"
        project = make_project(folder, variant, 10, big_bytes)
        try:
            run_scenarios(results, "big", project, [BIG_FIRST])
            for _ in range(repeats):
                run_scenarios(results, "big", project, BIG_TOUCHED)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def warm_up(workdir: Path) -> None:
    """Run each variant once, untimed, so the first timed run does not pay for a cold disk cache."""
    for variant in VARIANTS:
        project = make_project(workdir / f"warm-{variant}", variant, 2)
        doit(project)
        shutil.rmtree(project.folder, ignore_errors=True)


def group_name(pipelines: int) -> str:
    """Return the results group of a pipeline count."""
    return f"P={pipelines}"


def format_seconds(value: float | None) -> str:
    """Format a time in seconds for the report."""
    return "failed" if value is None else f"{value:.3f}"


def ratio(ours: float | None, bare: float | None) -> str:
    """Format ours/bare for the report."""
    return "-" if ours is None or not bare else f"{ours / bare:.2f}"


def table(results: Results, group: str, scenarios: Sequence[str]) -> list[str]:
    """Return a markdown table of median times per scenario and variant."""
    lines = ["| scenario | ours (s) | bare (s) | bare-json (s) | ours/bare |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name in scenarios:
        medians = [results.median(group, name, variant) for variant in VARIANTS]
        cells = [name, *map(format_seconds, medians), ratio(medians[0], medians[1])]
        lines.append(f"| {' | '.join(cells)} |")
    return lines


def pipelines_section(results: Results, pipelines: int, repeats: int) -> list[str]:
    """Return the report section of one pipeline count: the table and the first-run overhead per step."""
    group, steps = group_name(pipelines), len(STEPS) * pipelines
    ours, bare = (results.median(group, "first run", variant) for variant in VARIANTS[:2])
    overhead = "n/a" if ours is None or bare is None else f"{(ours - bare) / steps * 1000:.1f} ms"
    return [f"## {pipelines} pipelines ({steps} steps), median of {repeats}", "",
            *table(results, group, [s.name for s in SCENARIOS]), "",
            f"First-run overhead of ours per step: {overhead} ((ours - bare) / {steps} steps).", ""]


def big_section(results: Results, big_gib: float, repeats: int) -> list[str]:
    """Return the report section of the big-input case."""
    return [f"## Touched {big_gib:g} GiB input (10 pipelines; p_0's raw input is the big file)", "",
            f"First run: 1 sample. Then, {repeats} times: touch the big file (mtime only), "
            f"and time {BIG_NOOPS} consecutive `doit` runs; medians.", "",
            *table(results, "big", [BIG_FIRST.name, *(s.name for s in BIG_TOUCHED)]), ""]


def machine() -> str:
    """Describe the machine: CPUs, CPU model, memory, OS."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} CPUs ({model}), {kib / 2**20:.1f} GiB RAM, {platform.platform()}"


def versions() -> str:
    """Return the Python and library versions."""
    names = ("doit", "hydra-core", "omegaconf", "xxhash")
    packages = ", ".join(f"{name} {metadata.version(name)}" for name in names)
    return f"Python {platform.python_version()}, {packages}"


def dbm_module() -> str:
    """Return the dbm module that doit's default backend uses here (the first one Python can import)."""
    for name in ("dbm.gnu", "dbm.ndbm"):
        try:
            importlib.import_module(name)
            return name
        except ImportError:
            pass
    return "dbm.dumb"


def revision() -> str:
    """Return the repo's git revision, marked dirty if the tree has local edits."""
    done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def kept_notes(path: Path) -> str:
    """Return the hand-written "## Notes" section of the previous report, so a new run keeps it."""
    previous = path.read_text() if path.exists() else ""
    _, found, notes = previous.partition("## Notes")
    return f"## Notes{notes}" if found else "## Notes\n\n(analysis written by hand after the run)\n"


def report(results: Results, args: argparse.Namespace, started: datetime, elapsed: float) -> str:
    """Return RESULTS.md."""
    lines = ["# Benchmark: mlops (ours) vs bare doit", "",
             f"- Command: `{shlex.join([sys.executable, *sys.argv])}`",
             f"- Date: {started:%Y-%m-%d %H:%M} UTC; took {elapsed / 60:.1f} min",
             f"- Machine: {machine()}",
             f"- Versions: {versions()}",
             f"- Repository: {revision()}", "",
             "Times are wall-clock seconds of one `python -m doit` subprocess in the project folder. "
             f"bare: hand-written dodo.py, doit defaults (dbm backend, here {dbm_module()}; md5 checker); "
             "bare-json: the same with doit's json backend (ours keeps a JSON snapshot plus a journal). "
             "See README.md.", ""]
    for pipelines in args.pipelines:
        lines += pipelines_section(results, pipelines, args.repeats)
    if args.big_gib:
        lines += big_section(results, args.big_gib, args.repeats)
    lines += ["## Checks", ""]
    lines += [f"- {failure}" for failure in results.failures] or ["All runs exited 0 and ran the expected tasks."]
    lines += ["", kept_notes(args.output)]
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, nargs="*", default=[10, 100, 1000],
                        help="pipeline counts; give none to run only the big-input case (default: 10 100 1000)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs per scenario; the median is reported (default: 5)")
    parser.add_argument("--big-gib", type=float, default=1.0,
                        help="size of the big input in GiB; 0 skips that case (default: 1)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md",
                        help="report file (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> None:
    """Run the benchmark and write the report."""
    args = parse_args(argv)
    started, clock = datetime.now(UTC), time.perf_counter()
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="mlops-bench-", dir="/tmp"))
    try:
        warm_up(workdir)
        for pipelines in args.pipelines:
            bench_pipelines(results, workdir, pipelines, args.repeats)
        if args.big_gib:
            bench_big(results, workdir, round(args.big_gib * GIB), args.repeats)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.output.write_text(report(results, args, started, time.perf_counter() - clock))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
