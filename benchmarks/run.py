"""Benchmark mlops ("ours") against a minimal doit project, hand-written doit, Snakemake and DVC on one DAG.

Run from anywhere with the project's Python (the bench extra installed for Snakemake and DVC); writes
benchmarks/RESULTS.md:

    python benchmarks/run.py [--pipelines 10 100 1000] [--repeats 5] [--big-gib 1] [--no-peers] [--before PYTHON]
"""

from __future__ import annotations

import argparse
import importlib
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

from variants import GIB, INTERPRETERS, NEW_ALPHA, STEPS, VARIANTS, Project, child_env, make_project, outputs

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BIG_NOOPS = 3
BIG_PIPELINES = 10
DEFAULT_VARIANTS = ("ours", "tracked", "minimal", "bare", "snakemake", "dvc")
# The largest pipeline count each peer runs at by default: their first runs grow faster than linearly
# (Snakemake about 3.5 min at P=1000; DVC 4 to 9 min at P=100, as it rewrites dvc.lock after each stage).
DEFAULT_MAX = {"snakemake": 100, "dvc": 10}
RATIOS = ("minimal", "bare", "before")
LOGGER = "logger"  # the column of the time a variant's background logger took after each command


@dataclass(frozen=True)
class Run:
    """One timed command: wall-clock seconds, the tasks it ran, and an error line if it failed."""

    seconds: float
    ran: frozenset[str]
    error: str | None
    settled: float | None = None  # seconds what it left running took after it (tracked: the logger)


@dataclass(frozen=True)
class Scenario:
    """A state change, then one timed command and the tasks it should run (None: not checked).

    `change` returns False when the scenario does not apply to the variant (it has no parameter file);
    `action` names the variant's command; `complete`: every step's output file must exist afterwards.
    """

    name: str
    change: Callable[[Project], bool]
    expected: Callable[[Project], set[str]] | None
    action: str = "run"
    complete: bool = False


@dataclass
class Results:
    """Times by (group, scenario, variant), what did not apply, and every failed run or check."""

    times: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    not_applicable: set[tuple[str, str, str]] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)

    def record(self, group: str, scenario: Scenario, project: Project, run: Run) -> None:
        """Keep the time of a run that exited 0; note a failed run or a check that did not hold."""
        where = f"{group}, {project.variant}, {scenario.name}"
        if run.error is not None:
            self.failures.append(f"{where}: the command failed: {run.error}")
            return
        self.times.setdefault((group, scenario.name, project.variant), []).append(run.seconds)
        if run.settled is not None:
            self.times.setdefault((group, scenario.name, f"{project.variant} {LOGGER}"), []).append(run.settled)
        problem = check(run, scenario.expected(project)) if scenario.expected else None
        if scenario.complete and not problem:
            problem = missing_outputs(project)
        if problem:
            self.failures.append(f"{where}: {problem}")

    def cell(self, group: str, scenario: str, variant: str) -> str:
        """Return a table cell: the median time, "-" if the scenario does not apply, or "failed"."""
        if (group, scenario, variant) in self.not_applicable:
            return "-"
        return format_seconds(self.median(group, scenario, variant))

    def median(self, group: str, scenario: str, variant: str) -> float | None:
        """Return the median time, or None if no run succeeded."""
        times = self.times.get((group, scenario, variant))
        return statistics.median(times) if times else None


@dataclass(frozen=True)
class Plan:
    """What to run: the variants, the largest pipeline count of each, and the repeats of the peers."""

    variants: tuple[str, ...]
    max_pipelines: dict[str, int]
    repeats: int
    peer_repeats: int

    def runs_at(self, pipelines: int) -> list[str]:
        """Return the variants that run at this pipeline count."""
        return [v for v in self.variants if pipelines <= self.max_pipelines.get(v, pipelines)]

    def repeats_of(self, variant: str) -> int:
        """Return how many times a variant runs each scenario."""
        return self.peer_repeats if VARIANTS[variant].peer else self.repeats


def nothing(project: Project) -> bool:
    """Leave the project as it is."""
    return True


def touch_input(project: Project) -> bool:
    """Set data/p_0.txt's modification time to now, as `touch` does, content unchanged.

    So the input is newer than the outputs made from it: Snakemake looks only then. Not a time ahead of the
    clock: a file dated in the future is racy (`mlops/common/identity.py`) and hashed on every command until
    the clock passes it, which no user's `touch` causes.
    """
    path = project.folder / "data" / "p_0.txt"
    mtime = max(time.time_ns(), path.stat().st_mtime_ns + 1)
    os.utime(path, ns=(mtime, mtime))
    return True


def change_input(project: Project) -> bool:
    """Append a line to data/p_0.txt."""
    with open(project.folder / "data" / "p_0.txt", "a") as handle:
        handle.write("changed\n")
    return True


def change_param(project: Project) -> bool:
    """Change p_0's train alpha in the variant's parameter file; False if it has none."""
    set_alpha = VARIANTS[project.variant].set_alpha
    if set_alpha is None:
        return False
    set_alpha(project, NEW_ALPHA)
    return True


def all_tasks(project: Project) -> set[str]:
    """Return every task of the project."""
    return {f"{step}:{name}" for step in STEPS for name in project.names}


def no_tasks(project: Project) -> set[str]:
    """Return no task."""
    return set()


def p0_tasks(*steps: str) -> Callable[[Project], set[str]]:
    """Return a function giving pipeline p_0's tasks of the given steps."""
    return lambda project: {f"{step}:p_0" for step in steps}


def after_touch(project: Project) -> set[str]:
    """Return p_0's tasks if the variant reruns on an mtime-only touch of an input of p_0's size, else none."""
    limit = VARIANTS[project.variant].touch_reruns_above
    size = (project.folder / "data" / "p_0.txt").stat().st_size
    return p0_tasks(*STEPS)(project) if limit is not None and size > limit else set()


def cli_param(project: Project) -> set[str]:
    """Return train:p_0 for the variants that take p_0's alpha on the command line; none for the others."""
    return {"train:p_0"} if project.variant in ("ours", "tracked", "before", "snakemake") else set()


SCENARIOS = (
    Scenario("first run", nothing, all_tasks, complete=True),
    Scenario("no-op rerun", nothing, no_tasks),
    Scenario("no-op rerun again", nothing, no_tasks),  # ours: answered from the first no-op's fingerprint
    Scenario("touched 1 input (mtime only)", touch_input, after_touch),
    Scenario("no-op after the touch", nothing, no_tasks),
    Scenario("changed 1 input's content", change_input, p0_tasks(*STEPS)),
    Scenario("changed 1 pipeline's param in its file", change_param, p0_tasks("train", "evaluate", "predict")),
    # Last before the listing: ours and Snakemake then hold a record of train:p_0 made with alpha 3.0.
    Scenario("1 pipeline's param on the command line", nothing, cli_param, "cli-param"),
    Scenario("listing", nothing, None, "list"),
)
BIG_FIRST = Scenario("first run", nothing, all_tasks, complete=True)
BIG_TOUCHED = [Scenario(f"no-op {k} after the touch", touch_input if k == 1 else nothing,
                        after_touch if k == 1 else no_tasks)
               for k in range(1, BIG_NOOPS + 1)]


def execute(project: Project, action: str) -> Run | None:
    """Run the variant's command for `action` in the project folder and time it; None if it has none."""
    variant = VARIANTS[project.variant]
    args = variant.commands.get(action)
    if args is None:
        return None
    command, env = [variant.python(), "-m", variant.tool, *args], child_env()
    # Each timed command starts with nothing of an earlier one waiting to be written to disk: on a slow disk, the
    # kernel's write-back of the last command's (or a removed project's) files would slow this one's.
    os.sync()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=project.folder, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    settled = variant.settle(project) if variant.settle else None
    lines = (done.stderr or done.stdout).strip().splitlines()
    error = None if done.returncode == 0 else f"exit {done.returncode}: {lines[-1] if lines else ''}"
    return Run(seconds, variant.ran(done.stdout, done.stderr), error, settled)


def check(run: Run, expected: set[str]) -> str | None:
    """Describe how the tasks that ran differ from the expected ones, or None if they match."""
    missing, extra = sorted(expected - run.ran), sorted(run.ran - expected)
    if not missing and not extra:
        return None
    return (f"expected {len(expected)} tasks to run, {len(run.ran)} ran; "
            f"missing {missing[:5]}, unexpected {extra[:5]}")


def missing_outputs(project: Project) -> str | None:
    """Describe the step output files that do not exist, or None if all do."""
    missing = [str(path.relative_to(project.folder)) for path in outputs(project) if not path.exists()]
    return f"{len(missing)} output files missing, e.g. {missing[:3]}" if missing else None


def run_scenarios(results: Results, group: str, project: Project, scenarios: Sequence[Scenario]) -> None:
    """Apply and time each scenario in order on one project, printing progress."""
    for scenario in scenarios:
        run = execute(project, scenario.action) if scenario.change(project) else None
        if run is None:
            results.not_applicable.add((group, scenario.name, project.variant))
            status = "-"
        else:
            results.record(group, scenario, project, run)
            status = "FAILED" if run.error else f"{run.seconds:.3f} s"
        print(f"  {group:>6} {project.variant:<9} {scenario.name:<40} {status}", file=sys.stderr)


def bench_pipelines(results: Results, workdir: Path, pipelines: int, plan: Plan) -> None:
    """Run every scenario on a fresh project per variant and repeat, variants interleaved."""
    for repeat in range(plan.repeats):
        for variant in plan.runs_at(pipelines):
            if repeat >= plan.repeats_of(variant):
                continue
            folder = workdir / f"p{pipelines}-r{repeat}-{variant}"
            project = make_project(folder, variant, pipelines)
            try:
                run_scenarios(results, group_name(pipelines), project, SCENARIOS)
            finally:
                shutil.rmtree(folder, ignore_errors=True)


def bench_big(results: Results, workdir: Path, big_bytes: int, plan: Plan) -> None:
    """Per variant, repeated: a first run of a fresh 10-pipeline project with a big p_0 input, then the touch and
    the no-ops after it."""
    for repeat in range(plan.repeats):
        for variant in plan.runs_at(BIG_PIPELINES):
            if repeat >= plan.repeats_of(variant):
                continue
            folder = workdir / f"big-r{repeat}-{variant}"
            project = make_project(folder, variant, BIG_PIPELINES, big_bytes)
            try:
                run_scenarios(results, "big", project, [BIG_FIRST, *BIG_TOUCHED])
            finally:
                shutil.rmtree(folder, ignore_errors=True)


def warm_up(workdir: Path, plan: Plan) -> None:
    """Run each variant once, untimed, so the first timed run does not pay for a cold disk cache."""
    for variant in plan.variants:
        project = make_project(workdir / f"warm-{variant}", variant, 2)
        execute(project, "run")  # waits for what the run left running, as every timed run does
        shutil.rmtree(project.folder, ignore_errors=True)


def group_name(pipelines: int) -> str:
    """Return the results group of a pipeline count."""
    return f"P={pipelines}"


def format_seconds(value: float | None) -> str:
    """Format a time in seconds for the report."""
    return "failed" if value is None else f"{value:.3f}"


def ratio(ours: float | None, other: float | None) -> str:
    """Format ours/other for the report."""
    return "-" if ours is None or not other else f"{ours / other:.2f}"


def table(results: Results, group: str, scenarios: Sequence[str], variants: Sequence[str]) -> list[str]:
    """Return a markdown table of median times per scenario and variant (the tracked variant's logger beside it),
    and the ratios of ours (and tracked) to minimal, bare and before."""
    columns = [column for variant in variants
               for column in (variant, *([f"{variant} {LOGGER}"] if VARIANTS[variant].settle else []))]
    ratios = [(mine, other) for mine in ("ours", "tracked") if mine in variants
              for other in RATIOS if other in variants and (mine, other) != ("tracked", "before")]
    header = [*(f"{column} (s)" for column in columns), *(f"{mine}/{other}" for mine, other in ratios)]
    lines = [f"| scenario | {' | '.join(header)} |", f"| --- |{' ---: |' * len(header)}"]
    for name in scenarios:
        cells = [results.cell(group, name, column) for column in columns]
        cells += [ratio(results.median(group, name, mine), results.median(group, name, other))
                  for mine, other in ratios]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    return lines


def not_run_line(plan: Plan, variants: Sequence[str]) -> list[str]:
    """Return a line naming the selected variants that do not run at this size, and their limit."""
    left_out = [f"{v} (runs up to P={plan.max_pipelines[v]})" for v in plan.variants if v not in variants]
    return [f"Not run at this size: {', '.join(left_out)}.", ""] if left_out else []


def overhead_line(results: Results, group: str, steps: int) -> list[str]:
    """Return the first-run overhead of ours per step over minimal and over bare."""
    ours = results.median(group, "first run", "ours")
    parts = [f"{(ours - other) / steps * 1000:.1f} ms over {name}"
             for name in RATIOS if ours is not None and (other := results.median(group, "first run", name))]
    return [f"First-run overhead of ours per step: {', '.join(parts)} ((ours - other) / {steps} steps).", ""] \
        if parts else []


def repeats_line(plan: Plan, variants: Sequence[str]) -> list[str]:
    """Return a line giving the peers' repeats when they differ from the others'."""
    peers = [v for v in variants if VARIANTS[v].peer]
    if not peers or plan.peer_repeats == plan.repeats:
        return []
    return [f"{', '.join(peers)}: median of {plan.peer_repeats}.", ""]


def pipelines_section(results: Results, pipelines: int, plan: Plan) -> list[str]:
    """Return the report section of one pipeline count: the table and the first-run overhead per step."""
    group, steps, variants = group_name(pipelines), len(STEPS) * pipelines, plan.runs_at(pipelines)
    return [f"## {pipelines} pipelines ({steps} steps), median of {plan.repeats}", "",
            *table(results, group, [s.name for s in SCENARIOS], variants), "",
            *repeats_line(plan, variants), *not_run_line(plan, variants), *overhead_line(results, group, steps)]


def big_section(results: Results, big_gib: float, plan: Plan) -> list[str]:
    """Return the report section of the big-input case."""
    variants = plan.runs_at(BIG_PIPELINES)
    rerun = [v for v in variants if VARIANTS[v].touch_reruns_above is not None]
    rerun_note = (f" {', '.join(rerun)} runs p_0's four steps again on the first run after the touch (an input "
                  "above its checksum size limit is judged by modification time)." if rerun else "")
    return [f"## Touched {big_gib:g} GiB input ({BIG_PIPELINES} pipelines; p_0's raw input is the big file)", "",
            f"{plan.repeats} times, on a fresh project: a first run, then touch the big file (mtime only) and "
            f"time {BIG_NOOPS} consecutive runs; medians.{rerun_note}", "",
            *table(results, "big", [BIG_FIRST.name, *(s.name for s in BIG_TOUCHED)], variants), "",
            *repeats_line(plan, variants), *not_run_line(plan, variants)]


def machine() -> str:
    """Describe the machine: CPUs, CPU model, memory, OS."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    kib = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} CPUs ({model}), {kib / 2**20:.1f} GiB RAM, {platform.platform()}"


def versions() -> str:
    """Return the Python and library versions, Snakemake's and DVC's when they are installed."""
    names = ["doit", "hydra-core", "omegaconf", "xxhash"]
    names += [name for name in ("snakemake", "dvc") if VARIANTS[name].available()]
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


def sizes_line(plan: Plan, pipelines: Sequence[int]) -> str:
    """Return the pipeline counts each variant ran at."""
    ran = [f"{v} {', '.join(map(str, [p for p in pipelines if v in plan.runs_at(p)])) or 'none'}"
           for v in plan.variants]
    return f"- Pipeline counts: {'; '.join(ran)}"


def intro() -> str:
    """Return the paragraph that says what the variants and the commands are."""
    return ("Times are wall-clock seconds of one subprocess in the project folder, interpreter start-up "
            "included: `python -m doit` (ours, minimal, bare), `python -m snakemake --cores 1 "
            "--force-use-threads`, `python -m dvc repro`; the listing is `doit list`, `snakemake --list-rules`, "
            "`dvc stage list`. minimal: a dodo.py with file_dep and targets only, doit defaults (dbm backend, "
            f"here {dbm_module()}; md5 checker); bare: the same with params.json and config_changed on train's "
            "params. On the command-line row, minimal and bare run `doit train:p_0` with no parameter (they "
            "cannot take one; nothing runs), Snakemake `--config \"alpha={'p_0': 3.0}\"` with the model file as "
            "target; DVC has no such command (-). \"-\": does not apply. See README.md.")


def report(results: Results, args: argparse.Namespace, plan: Plan, skipped: list[str], started: datetime,
           elapsed: float) -> str:
    """Return RESULTS.md."""
    lines = ["# Benchmark: mlops (ours) vs minimal doit, bare doit, Snakemake and DVC", "",
             f"- Command: `{shlex.join(['python', 'benchmarks/run.py', *sys.argv[1:]])}` "
             "(in an environment with `pip install -e '.[bench]'`)",
             f"- Date: {started:%Y-%m-%d %H:%M} UTC; took {elapsed / 60:.1f} min",
             f"- Machine: {machine()}",
             f"- Versions: {versions()}",
             f"- Repository: {revision()}",
             sizes_line(plan, [*args.pipelines, *([BIG_PIPELINES] if args.big_gib else [])]),
             *(f"- Skipped: {line}" for line in skipped), "",
             intro(), ""]
    for pipelines in args.pipelines:
        lines += pipelines_section(results, pipelines, plan)
    if args.big_gib:
        lines += big_section(results, args.big_gib, plan)
    lines += ["## Checks", ""]
    lines += [f"- {failure}" for failure in results.failures] or [
        "All runs exited 0, ran the expected tasks, and the first runs wrote every output."]
    lines += ["", kept_notes(args.output)]
    return "\n".join(lines)


def parse_max(words: Sequence[str]) -> dict[str, int]:
    """Parse VARIANT=P words over the default limits."""
    limits = dict(DEFAULT_MAX)
    for word in words:
        name, _, value = word.partition("=")
        if name not in VARIANTS or not value.isdigit():
            raise SystemExit(f"--max {word}: expected VARIANT=P with VARIANT one of {', '.join(VARIANTS)}")
        limits[name] = int(value)
    return limits


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, nargs="*", default=[10, 100, 1000],
                        help="pipeline counts; give none to run only the big-input case (default: 10 100 1000)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs per scenario; the median is reported (default: 5)")
    parser.add_argument("--big-gib", type=float, default=1.0,
                        help="size of the big input in GiB; 0 skips that case (default: 1)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(DEFAULT_VARIANTS),
                        help=f"variants to run (default: {' '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--no-peers", action="store_true", help="run neither Snakemake nor DVC")
    parser.add_argument("--max", nargs="+", default=[], metavar="VARIANT=P",
                        help="largest pipeline count a variant runs at (default: "
                             f"{' '.join(f'{k}={v}' for k, v in DEFAULT_MAX.items())}; the others: all)")
    parser.add_argument("--peer-repeats", type=int,
                        help="runs per scenario of Snakemake and DVC (default: --repeats)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md",
                        help="report file (default: %(default)s)")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also time ours with this Python, of an environment with an earlier mlops installed "
                             "(variant 'before', and the ratio ours/before)")
    args = parser.parse_args(argv)
    if args.before:
        INTERPRETERS["before"] = args.before
        args.variants = [*dict.fromkeys([*args.variants, "before"])]
    return args


def make_plan(args: argparse.Namespace) -> tuple[Plan, list[str]]:
    """Return what to run and a line per selected peer skipped because it is not installed."""
    chosen = [v for v in args.variants if not (args.no_peers and VARIANTS[v].peer)]
    skipped = [f"{v}: not installed (pip install -e '.[bench]')" for v in chosen if not VARIANTS[v].available()]
    variants = tuple(v for v in chosen if VARIANTS[v].available())
    peer_repeats = args.repeats if args.peer_repeats is None else min(args.peer_repeats, args.repeats)
    return Plan(variants, parse_max(args.max), args.repeats, peer_repeats), skipped


def main(argv: Sequence[str]) -> None:
    """Run the benchmark and write the report."""
    args = parse_args(argv)
    plan, skipped = make_plan(args)
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    started, clock = datetime.now(UTC), time.perf_counter()
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="mlops-bench-", dir="/tmp"))
    try:
        warm_up(workdir, plan)
        for pipelines in args.pipelines:
            bench_pipelines(results, workdir, pipelines, plan)
        if args.big_gib:
            bench_big(results, workdir, round(args.big_gib * GIB), plan)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.output.write_text(report(results, args, plan, skipped, started, time.perf_counter() - clock))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
