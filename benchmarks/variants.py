"""The benchmark's variants: how each project is written, which command runs it, and which tasks a run ran.

Every variant has the same DAG (prepare -> train -> evaluate -> predict for each pipeline p_<i>), the same
step functions (templates/bench_steps.py) and the same data files. Task names are doit's: "train:p_0".
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TEMPLATES = HERE / "templates"
STEPS = ("prepare", "train", "evaluate", "predict")
ALPHA, NEW_ALPHA, CLI_ALPHA = 1.0, 2.0, 3.0
MIB, GIB = 1 << 20, 1 << 30
DATE = "2026-01-01"
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
# Snakemake: one job at a time; `run:` blocks in Snakemake's process (by default each is a new Snakemake
# process that parses the Snakefile again, about 2 s a job here), as doit runs its Python actions.
SNAKEMAKE = ("--cores", "1", "--force-use-threads")
# The rule (or local rule) a job runs, then its wildcard, in Snakemake's job lines on stderr.
SNAKEMAKE_RULE = re.compile(r"^(?:local)?rule (\w+):$")
SNAKEMAKE_WILDCARD = re.compile(r"^\s+wildcards: pipeline=(\w+)$")
DVC_STAGE = re.compile(r"^Running stage '(\w+)@(\w+)':$")
# An input newer than a job's outputs makes Snakemake run the job again, unless the input is at most this size
# (--max-checksum-file-size) and its checksum is the one recorded.
SNAKEMAKE_CHECKSUM_MAX = 1_000_000


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
class Variant:
    """One way of writing and running the benchmark's DAG.

    `commands` maps an action ("run" everything, "list" the tasks, "cli-param": run train:p_0 with alpha
    given on the command line) to the arguments after `python -m <tool>`; an action it lacks is not
    applicable. `set_alpha` writes p_0's alpha in the project's parameter file (None: it has none).
    `touch_reruns_above`: an mtime-only touch of an input larger than this many bytes runs its tasks again.
    `out_root`: the folder that holds the step outputs, as <pipeline>/<step>/<file>.
    """

    name: str
    tool: str
    write: Callable[[Project], None]
    commands: dict[str, tuple[str, ...]]
    ran: Callable[[str, str], frozenset[str]]
    set_alpha: Callable[[Project, float], None] | None
    touch_reruns_above: int | None = None
    peer: bool = False
    out_root: str = "outputs"
    settle: Callable[[Project], float] | None = None  # waits for what a command left running; its seconds

    def available(self) -> bool:
        """Tell whether the tool can be imported by this Python (the variant's own Python: given, if it has one)."""
        if self.name in INTERPRETERS:
            return True
        return self.name not in OWN_PYTHON and importlib.util.find_spec(self.tool) is not None

    def python(self) -> str:
        """Return the Python that runs the variant's commands."""
        return INTERPRETERS.get(self.name, sys.executable)


def make_project(folder: Path, variant: str, pipelines: int, big_bytes: int = 0) -> Project:
    """Generate a fresh project: data files, the step module, and the variant's own files."""
    project = Project(folder, variant, pipelines)
    folder.mkdir(parents=True)
    write_data(project, big_bytes)
    shutil.copy(TEMPLATES / "bench_steps.py", folder / "bench_steps.py")
    VARIANTS[variant].write(project)
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
    """Write `size` bytes by repeating one random 1 MiB block, and wait until they are on disk: the kernel's
    write-back of a fresh gigabyte would otherwise slow whichever variant's commands run next."""
    block = os.urandom(MIB)
    with open(path, "wb") as handle:
        for offset in range(0, size, MIB):
            handle.write(block[: min(MIB, size - offset)])
        handle.flush()
        os.fsync(handle.fileno())


def write_ours(project: Project, tracking: bool = False) -> None:
    """Copy dodo.py, pyproject.toml and the base and env config from the repo; write the pipeline files.

    Bare doit tracks no experiments: ours neither, but as the "tracked" variant (MLflow's embedded store)."""
    folder = project.folder
    for name in ("dodo.py", "pyproject.toml"):
        shutil.copy(REPO / name, folder / name)
    (folder / "conf" / "pipelines").mkdir(parents=True)
    config = (REPO / "conf" / "config.yaml").read_text()
    if not tracking:
        config = config.replace("tracking:\n  use: true\n", "tracking:\n  use: false\n")
    (folder / "conf" / "config.yaml").write_text(config)
    shutil.copytree(REPO / "conf" / "env", folder / "conf" / "env")
    for name in project.names:
        write_pipeline(folder, name, ALPHA)


def write_pipeline(folder: Path, name: str, alpha: float) -> None:
    """Write conf/pipelines/<name>.yaml with the four bench steps."""
    (folder / "conf" / "pipelines" / f"{name}.yaml").write_text(PIPELINE_YAML.format(name=name, alpha=alpha))


def set_ours_alpha(project: Project, alpha: float) -> None:
    """Write p_0's pipeline file with another alpha."""
    write_pipeline(project.folder, "p_0", alpha)


def write_minimal(project: Project) -> None:
    """Copy the minimal dodo.py: its pipelines are the files in data/, alpha a constant."""
    shutil.copy(TEMPLATES / "minimal_dodo.py", project.folder / "dodo.py")


def write_bare(project: Project, json_backend: bool = False) -> None:
    """Write the hand-written dodo.py (json backend if asked) and params.json."""
    dodo = (TEMPLATES / "bare_dodo.py").read_text() + (JSON_BACKEND if json_backend else "")
    (project.folder / "dodo.py").write_text(dodo)
    write_bare_params(project, ALPHA)


def write_bare_params(project: Project, p0_alpha: float) -> None:
    """Write params.json: train's alpha per pipeline, p0_alpha for p_0."""
    params = {name: {"train": {"alpha": p0_alpha if name == "p_0" else ALPHA}} for name in project.names}
    (project.folder / "params.json").write_text(json.dumps(params))


def write_snakemake(project: Project) -> None:
    """Copy the Snakefile; write config.yaml."""
    shutil.copy(TEMPLATES / "Snakefile", project.folder / "Snakefile")
    write_snakemake_config(project, ALPHA)


def write_snakemake_config(project: Project, p0_alpha: float) -> None:
    """Write config.yaml: alpha per pipeline, p0_alpha for p_0."""
    lines = [f"  {name}: {p0_alpha if name == 'p_0' else ALPHA}\n" for name in project.names]
    (project.folder / "config.yaml").write_text("alpha:\n" + "".join(lines))


def write_dvc(project: Project) -> None:
    """Copy dvc.yaml and its step command; write params.yaml; make a DVC project without Git, kept offline."""
    folder = project.folder
    for name in ("dvc.yaml", "dvc_step.py"):
        shutil.copy(TEMPLATES / name, folder / name)
    write_dvc_params(project, ALPHA)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=folder, env=child_env(), check=True)
    # No usage reports or update checks; DVC's state and index (its "site cache") inside the project.
    (folder / ".dvc" / "config").write_text(
        "[core]\n    no_scm = True\n    analytics = false\n    check_update = false\n"
        f"    site_cache_dir = {folder / '.dvc' / 'tmp' / 'site'}\n")


def write_dvc_params(project: Project, p0_alpha: float) -> None:
    """Write params.yaml: under `pipelines`, alpha per pipeline, p0_alpha for p_0."""
    lines = [f"  {name}: {{alpha: {p0_alpha if name == 'p_0' else ALPHA}}}\n" for name in project.names]
    (project.folder / "params.yaml").write_text("pipelines:\n" + "".join(lines))


def wait_for_logger(project: Project) -> float:
    """Wait for the tracking logger a command of the project started to end (it sends the command's results to
    MLflow, off the command's path); return the seconds waited, from the command's end."""
    start = time.perf_counter()
    folder = str(project.folder).encode()
    while any(folder in command for command in _loggers()):
        time.sleep(0.01)
    return time.perf_counter() - start


def _loggers() -> list[bytes]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"mlops.integrations.logger" in command:
            found.append(command)
    return found


def child_env() -> dict[str, str]:
    """Return the environment of the timed commands.

    Bytecode caching on (as in normal use), this Python's scripts first on PATH (DVC's commands call
    `python`), and no DVC usage reports.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def doit_ran(stdout: str, stderr: str) -> frozenset[str]:
    """Return the tasks doit ran: its `.  task` lines."""
    return frozenset(line[3:].strip() for line in stdout.splitlines() if line.startswith(".  "))


def snakemake_ran(stdout: str, stderr: str) -> frozenset[str]:
    """Return the jobs Snakemake ran, as step:pipeline: each job's rule line and its wildcard line."""
    ran, rule = set(), None
    for line in stderr.splitlines():
        if found := SNAKEMAKE_RULE.match(line):
            rule = found.group(1)
        elif rule and (found := SNAKEMAKE_WILDCARD.match(line)):
            ran.add(f"{rule}:{found.group(1)}")
            rule = None
    return frozenset(ran)


def dvc_ran(stdout: str, stderr: str) -> frozenset[str]:
    """Return the stages DVC ran, as step:pipeline: its `Running stage 'step@pipeline':` lines."""
    return frozenset(f"{m.group(1)}:{m.group(2)}" for m in map(DVC_STAGE.match, stdout.splitlines()) if m)


def outputs(project: Project) -> list[Path]:
    """Return the output files of every step."""
    files = {"prepare": "features.csv", "train": "model.pkl", "evaluate": "metrics.json",
             "predict": f"forecast_{DATE}.csv"}
    root = project.folder / VARIANTS[project.variant].out_root
    return [root / name / step / file for name in project.names for step, file in files.items()]


DOIT_RUN = {"run": (), "list": ("list",)}
OURS_RUN = {**DOIT_RUN, "cli-param": ("train:p_0", f"pipelines.p_0.train.alpha={CLI_ALPHA}")}
# "before": ours' project, run by the Python of another environment, in which an earlier mlops is installed
# (`run.py --before PATH`): the same loops timed before and after a change, in one run.
OWN_PYTHON = frozenset({"before"})
INTERPRETERS: dict[str, str] = {}  # variant -> the Python that runs it, for the variants in OWN_PYTHON
VARIANTS = {
    variant.name: variant
    for variant in (
        Variant("ours", "doit", write_ours, OURS_RUN, doit_ran, set_ours_alpha, out_root="outputs/dev"),
        Variant("before", "doit", write_ours, OURS_RUN, doit_ran, set_ours_alpha, out_root="outputs/dev"),
        Variant("tracked", "doit", lambda project: write_ours(project, tracking=True), OURS_RUN, doit_ran,
                set_ours_alpha, out_root="outputs/dev", settle=wait_for_logger),
        Variant("minimal", "doit", write_minimal, {**DOIT_RUN, "cli-param": ("train:p_0",)}, doit_ran, None),
        Variant("bare", "doit", write_bare, {**DOIT_RUN, "cli-param": ("train:p_0",)}, doit_ran,
                write_bare_params),
        Variant("bare-json", "doit", lambda project: write_bare(project, json_backend=True),
                {**DOIT_RUN, "cli-param": ("train:p_0",)}, doit_ran, write_bare_params),
        Variant("snakemake", "snakemake", write_snakemake,
                {"run": SNAKEMAKE, "list": ("--list-rules",),
                 "cli-param": (*SNAKEMAKE, "outputs/p_0/train/model.pkl", "--config", f"alpha={{'p_0': {CLI_ALPHA}}}")},
                snakemake_ran, write_snakemake_config, touch_reruns_above=SNAKEMAKE_CHECKSUM_MAX, peer=True),
        Variant("dvc", "dvc", write_dvc, {"run": ("repro",), "list": ("stage", "list")}, dvc_ran, write_dvc_params,
                peer=True),
    )
}
