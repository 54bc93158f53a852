"""The tiny project the differential oracle edits and runs: two pipelines, a dated step, a module only pipeline b
imports, integer keys read by membership, a value from the environment, and versions of each file to switch
between (some of the same size, to be written with the mtime put back)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from helpers import copy_project

STEPS = '''\
"""The oracle's steps: each output is made from its inputs and the parameters it reads; each call is logged."""
import json
import os
import signal
from pathlib import Path

MARK = "|alpha="


def called(kind, params, outputs):
    name = f"{{kind}}:{{params['name']}}"
    folder = next(iter(outputs.values())).parent  # one per step, per variant of a sweep
    with open(os.environ["MLOPS_ORACLE_LOG"], "a") as log:
        log.write(f"{{folder}}@{{params.get('date', '')}}\\n")
    if os.environ.get("MLOPS_ORACLE_HANG") == name:
        Path(os.environ["MLOPS_ORACLE_LOG"] + ".hang").write_text(str(os.getpid()))
        signal.pause()  # until the test kills this process


def prepare(inputs, params, outputs):
    called("prepare", params, outputs)
    outputs["features"].write_text(inputs["raw"].read_text().upper() * params["scale"])


def train(inputs, params, outputs):
    called("train", params, outputs)
    weights = params.get("class_weight", {{}})
    extra = f" weighted={{1 in weights}}" if weights else ""
    outputs["model"].write_text(f"{{inputs['features'].read_text()}}{{MARK}}{{params['alpha']}}"
                                f"{{params.get('salt', '')}}{{extra}}{suffix}")


def evaluate(inputs, params, outputs):
    called("evaluate", params, outputs)
    outputs["metrics"].write_text(json.dumps({{"length": len(inputs["model"].read_text())}}))


def predict(inputs, params, outputs):
    called("predict", params, outputs)
    outputs["forecast"].write_text(f"{{params['date']}}:{{inputs['model'].read_text()}}")
'''

STEPS_B = '''\
from helper_b import shout

import oracle_steps


def prepare(inputs, params, outputs):
    oracle_steps.called("prepare", params, outputs)
    outputs["features"].write_text(shout(inputs["raw"].read_text()) * params["scale"])
'''

HELPER_B = "def shout(text):\n    return text.{method}()\n"

PIPELINE = '''\
prepare:
  fn: {prepare}
  name: {name}
  inputs:
    raw: data/{name}.txt
  scale: ${{scale}}
train:
  fn: oracle_steps.train
  name: {name}
  alpha: {alpha}
{extra}evaluate:
  fn: oracle_steps.evaluate
  name: {name}
predict:
  fn: oracle_steps.predict
  name: {name}
'''

# Versions of each file the oracle switches between; the first is the one a project starts with. Versions of
# one file that differ in content but not in size are written with the mtime put back, too.
VERSIONS: dict[str, list[str]] = {
    "oracle_steps.py": [STEPS.format(suffix=""), STEPS.format(suffix="").replace('"|alpha="', '"|ALPHA="'),
                        STEPS.format(suffix="!")],
    "helper_b.py": [HELPER_B.format(method=method) for method in ("upper", "lower", "title")],
    "data/a.txt": ["raw a\n", "raw z\n", "raw a, longer\n"],
    "data/b.txt": ["raw b\n", "raw y\n"],
    "conf/pipelines/a.yaml": [
        PIPELINE.format(prepare="oracle_steps.prepare", name="a", alpha=alpha, extra=extra)
        for alpha in ("0.5", "0.7") for extra in ("  class_weight: {0: 1.0, 1: 5.0}\n", "  class_weight: {0: 1.0}\n")
    ],
    "conf/pipelines/b.yaml": [
        PIPELINE.format(prepare="steps_b.prepare", name="b", alpha="0.5", extra=f"  salt: {salt}\n")
        for salt in ('${oc.env:MLOPS_ORACLE_SALT,""}', "fixed")
    ],
}
CACHES = (".mlops/cache", "outputs/dev/.digests.json", "outputs/dev/.noop", "outputs/dev/.versions.json")


def make(root: Path) -> Path:
    """Make the oracle's project at `root`, each file at its first version."""
    copy_project(root)
    shutil.rmtree(root / "conf" / "pipelines")
    (root / "conf" / "pipelines").mkdir()
    (root / "data").mkdir()
    config = root / "conf" / "config.yaml"
    config.write_text(config.read_text() + "scale: 2\n")
    (root / "steps_b.py").write_text(STEPS_B)
    with (root / "dodo.py").open("a") as dodo:  # loaded with dodo.py: before any step runs, from its bytecode
        dodo.write("\nimport oracle_steps  # noqa: E402, F401\n")
    for name, versions in VERSIONS.items():
        (root / name).write_text(versions[0])
    return root


def without_caches(project: Path, copy: Path) -> Path:
    """Copy `project` to `copy` with every cache removed: the cold run's project."""
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project, copy, symlinks=True)
    for name in CACHES:
        path = copy / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for cached in copy.rglob("__pycache__"):
        shutil.rmtree(cached)
    return copy


def sources(project: Path, copy: Path) -> Path:
    """Copy what a project is made from (no outputs, no state, no caches) to `copy`: a build from scratch."""
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project, copy, symlinks=True, ignore=shutil.ignore_patterns("outputs", ".mlops", "__pycache__"))
    return copy


def outputs(project: Path) -> dict[str, bytes]:
    """Return every step output under outputs/ by path (not the state, caches, locks or provenance)."""
    found = {}
    for path in sorted((project / "outputs").rglob("*")):
        relative = path.relative_to(project)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts) \
                and path.name != "provenance.json":
            found[str(relative)] = path.read_bytes()
    return found


def write_version(project: Path, name: str, text: str, how: str) -> None:
    """Write `text` to a file of the project: `edit` (in place), `keep-mtime` (in place, the mtime put back) or
    `mv` (a new file with the old mtime, renamed over it: another inode)."""
    path = project / name
    before = path.stat()
    if how == "mv":
        staged = path.with_name(path.name + ".new")
        staged.write_text(text)
        os.utime(staged, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(staged, path)
        return
    path.write_text(text)
    if how == "keep-mtime":
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
