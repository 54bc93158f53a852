"""What a step's code is, end to end: the project code it may run, compared by meaning, the
distributions it imports, and never bytecode or a loaded module older than its source."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import doit, edit, ran, run_doit, start_doit, wait_for
from mlops.run.code import code_state
from mlops.run.uptodate import code_reasons


def test_comments_layout_docstrings_and_unused_functions_rerun_nothing(ran_project: Path) -> None:
    steps = ran_project / "tiny_steps.py"
    edit(steps, "each output is derived", "every output comes")  # the module's docstring
    edit(steps, "import json\n", "import json  # for metrics\n\n\ndef unused():\n    return 1\n")
    edit(steps, "def train(inputs, params, outputs):\n",
         "def train(inputs,\n          params,\n          outputs):  # wrapped\n    '''Train.'''\n")
    assert doit(ran_project) == set()
    assert run_doit(ran_project, "why").stdout == ""


def test_a_changed_function_reruns_only_the_steps_that_use_it(ran_project: Path) -> None:
    edit(ran_project / "tiny_steps.py", 'json.dumps({"length"', 'json.dumps({"size"')
    assert run_doit(ran_project, "why", "evaluate:a").stdout == "evaluate:a: code changed: tiny_steps.py\n"
    assert doit(ran_project) == {"evaluate:a", "evaluate:b"}


HELPER_STEPS = "from tiny_help.text import shout\n\n\ndef prepare(inputs, params, outputs):\n" \
               "    outputs['features'].write_text(shout(inputs['raw'].read_text()) + f\"x{params['scale']}\")\n"


def test_project_modules_a_step_imports_are_its_code_transitively(ran_project: Path) -> None:
    package = ran_project / "tiny_help"
    package.mkdir()
    (package / "__init__.py").write_text("MARK = '!'\n")
    (package / "text.py").write_text("from . import MARK\n\n\ndef shout(text):\n    return text.upper() + MARK\n")
    (ran_project / "tiny_steps.py").write_text((ran_project / "tiny_steps.py").read_text() + HELPER_STEPS)
    assert "prepare:a" in doit(ran_project)
    edit(package / "text.py", "def shout(text):\n", "# louder\ndef shout(text):\n")
    assert doit(ran_project) == set()
    edit(package / "text.py", "text.upper()", "text.upper().strip()")
    assert run_doit(ran_project, "why", "prepare:a").stdout == "prepare:a: code changed: tiny_help/text.py\n"
    assert {"prepare:a", "prepare:b"} <= doit(ran_project)
    edit(package / "__init__.py", "'!'", "'?'")
    assert {"prepare:a", "prepare:b"} <= doit(ran_project)
    assert (ran_project / "outputs/dev/a/prepare/features.csv").read_text().startswith("RAW A?")
    assert "tiny_help/text.py" not in code_state("tiny_steps.train", "outputs/dev")  # train does not use it


def fake_distribution(site: Path, version: str) -> None:
    """Install (by hand, as pip lays it out) a distribution 'tinydist' providing the module tinydist."""
    for old in site.glob("tinydist-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    info = site / f"tinydist-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tinydist\nVersion: {version}\n")
    (info / "top_level.txt").write_text("tinydist\n")
    (site / "tinydist.py").write_text("FACTOR = 2\n")


def test_a_distribution_upgrade_reruns_the_steps_importing_it_unless_turned_off(ran_project: Path,
                                                                               tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_distribution(site, "1.0")
    env = {"PYTHONPATH": str(site)}
    edit(ran_project / "tiny_steps.py", "def train(inputs, params, outputs):\n",
         "def train(inputs, params, outputs):\n    import tinydist\n")
    assert doit(ran_project, **env) >= {"train:a", "train:b"}
    fake_distribution(site, "1.1")
    why = run_doit(ran_project, "why", "train:a", env=env)
    assert why.stdout == "train:a: tinydist: 1.0 -> 1.1\n"
    assert doit(ran_project, **env) == {"train:a", "train:b"}  # its output is the same: nothing downstream
    edit(ran_project / "pyproject.toml", "[tool.mlops]\n", "[tool.mlops]\ntrack_versions = false\n")
    assert doit(ran_project, **env) == set()  # turning tracking off (or on) reruns nothing
    fake_distribution(site, "2.0")
    assert doit(ran_project, **env) == set()


def test_the_state_names_python_and_each_imported_distribution() -> None:
    state = code_state("mlops.pipelines.demand.train_linear", "outputs/dev")
    assert state["python"] == platform.python_version()
    assert {"numpy", "pandas", "scikit-learn"} <= set(state)
    assert code_reasons({**state, "python": "3.10.0"}, state) == [f"python: 3.10.0 -> {platform.python_version()}"]


def test_a_same_size_edit_in_the_same_second_never_runs_stale_bytecode(ran_project: Path) -> None:
    steps = ran_project / "tiny_steps.py"
    writing = {"PYTHONDONTWRITEBYTECODE": ""}
    # Python writes a timestamp bytecode cache: valid while the source's mtime (seconds) and size stay.
    subprocess.run([sys.executable, "-c", "import tiny_steps"], cwd=ran_project, env={**os.environ, **writing},
                   check=True)
    assert importlib.util.cache_from_source(str(steps)) and (ran_project / "__pycache__").is_dir()
    before = steps.stat()
    edit(steps, "alpha={params", "ALPHA={params")  # same size
    os.utime(steps, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert doit(ran_project, **writing) >= {"train:a", "train:b"}
    assert "|ALPHA=0.5|" in (ran_project / "outputs/dev/a/train/model.pkl").read_text()


GATED_TRAIN = '''

def gated_train(inputs, params, outputs):
    from pathlib import Path
    import time
    Path("train.started").touch()
    deadline = time.monotonic() + 60
    while not Path("train.go").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    train(inputs, params, outputs)
'''


@pytest.mark.long
@pytest.mark.parametrize("mtime_kept", [False, True], ids=["edited", "same size and mtime"])
def test_code_edited_after_the_run_loaded_it_is_never_recorded_as_run(ran_project: Path, mtime_kept: bool) -> None:
    steps = ran_project / "tiny_steps.py"
    steps.write_text(steps.read_text() + GATED_TRAIN)
    edit(ran_project / "conf/pipelines/a.yaml", "fn: tiny_steps.train", "fn: tiny_steps.gated_train")
    # alpha changes train's output, so evaluate must run: on the code this process loaded with train's.
    running = start_doit(ran_project, "train:a", "evaluate:a", "pipelines.a.train.alpha=0.7")
    wait_for((ran_project / "train.started").exists)
    before = steps.stat()
    edit(steps, 'json.dumps({"length"', 'json.dumps({"lenGTH"')  # evaluate's code, loaded with train's
    if mtime_kept:
        os.utime(steps, ns=(before.st_atime_ns, before.st_mtime_ns))
    (ran_project / "train.go").touch()
    out, err = running.communicate(timeout=60)
    assert running.returncode != 0
    assert "tiny_steps.py changed after this run loaded its code" in out + err
    assert doit(ran_project, "evaluate:a", "pipelines.a.train.alpha=0.7") == {"evaluate:a"}
    assert '"lenGTH"' in (ran_project / "outputs/dev/a/evaluate/metrics.json").read_text()
    assert ran(run_doit(ran_project, "pipelines.a.train.alpha=0.7")) <= {"predict:a", "evaluate:b"}


LAYOUT = {
    "statistics.py": "def tag():\n    return '-s1'\n",  # named like a standard-library module
    "pkg/__init__.py": "__all__ = ['sub']\n",
    "pkg/sub.py": "def tag():\n    return '-p1'\n",  # reached through a star import
    "deep/__init__.py": "",
    "deep/inner.py": "def tag():\n    return '-d1'\n",  # reached as an attribute of an imported package
    "src/models/util.py": "def tag():\n    return '-n1'\n",  # in namespace packages (no __init__.py)
    "helper.py": "def used():\n    return '-h1'\n\n\ndef unused():\n    return 'x'\n",
    "cols.py": "COLS = " + " + ".join(f"['c{index}']" for index in range(1200)) + "\n",  # too deep for ast.dump
}
TRAIN_ALL = '''
import importlib
from statistics import tag as stat_tag
from shared_helper import tag as shared_tag
from pkg import *
import deep
from src.models.util import tag as ns_tag
from helper import used
from cols import COLS

importlib.import_module("deep.inner")


def train_all(inputs, params, outputs):
    text = stat_tag() + shared_tag() + sub.tag() + deep.inner.tag() + ns_tag() + used() + str(len(COLS))
    outputs["model"].write_text(inputs["features"].read_text() + text)


if __name__ == "__main__":
    print("tried by hand")
'''


def test_every_way_a_step_reaches_project_code_is_tracked(ran_project: Path, tmp_path: Path) -> None:
    for relative, text in LAYOUT.items():
        (ran_project / relative).parent.mkdir(parents=True, exist_ok=True)
        (ran_project / relative).write_text(text)
    outside = tmp_path / "elsewhere" / "shared_helper.py"
    outside.parent.mkdir()
    outside.write_text("def tag():\n    return '-l1'\n")
    (ran_project / "shared_helper.py").symlink_to(outside)  # a link in the project to a file elsewhere
    (ran_project / "tiny_steps.py").write_text((ran_project / "tiny_steps.py").read_text() + TRAIN_ALL)
    edit(ran_project / "conf/pipelines/a.yaml", "fn: tiny_steps.train\n", "fn: tiny_steps.train_all\n")
    assert "train:a" in doit(ran_project, "train:a")
    assert (ran_project / "outputs/dev/a/train/model.pkl").read_text().endswith("-s1-l1-p1-d1-n1-h1" + "1200")
    changes = [("statistics.py", "'-s1'", "'-s2'"), ("shared_helper.py", "'-l1'", "'-l2'"),
               ("pkg/sub.py", "'-p1'", "'-p2'"), ("deep/inner.py", "'-d1'", "'-d2'"),
               ("src/models/util.py", "'-n1'", "'-n2'"), ("helper.py", "'-h1'", "'-h2'"),
               ("cols.py", "['c7']", "['c8']")]
    for relative, old, new in changes:
        path = outside if relative == "shared_helper.py" else ran_project / relative
        text = path.read_text()
        path.write_text(text.replace(old, new))
        assert run_doit(ran_project, "why", "train:a").stdout == f"train:a: code changed: {relative}\n", relative
        path.write_text(text)
    for relative, old, new in [("helper.py", "return 'x'", "return 'y'"),  # a function the step does not use
                               ("tiny_steps.py", "tried by hand", "tried again")]:  # never runs on import
        edit(ran_project / relative, old, new)
        assert run_doit(ran_project, "why", "train:a").stdout == "train:a: up to date\n", relative
    (ran_project / "helper.py").unlink()
    assert run_doit(ran_project, "why", "train:a").stdout == "train:a: code missing: helper.py\n"


REGISTRY = ("REG = {}\n\n\ndef register(name):\n    def add(f):\n        REG[name] = f\n        return f\n"
            "    return add\n\n\n")


@pytest.mark.parametrize("helper", [
    REGISTRY + "@register('t')\ndef tag():\n    return 'A'\n",  # a decorator puts it in a registry on import
    "def __getattr__(name):\n    if name == 'tag':\n        return lambda: 'A'\n    raise AttributeError(name)\n",
], ids=["registry", "module-getattr"])
def test_code_reached_through_a_decorator_or_a_modules_getattr_is_tracked(ran_project: Path, helper: str) -> None:
    (ran_project / "helper.py").write_text(helper)
    call = "REG['t']()" if "REG" in helper else "tag()"
    edit(ran_project / "tiny_steps.py", "import json\n", f"import json\n\nfrom helper import {call[:3]}\n")
    edit(ran_project / "tiny_steps.py", "|{token}", "|{token}|{" + call + "}")
    assert doit(ran_project, "train:a") >= {"train:a"}
    edit(ran_project / "helper.py", "'A'", "'B'")
    assert doit(ran_project, "train:a") >= {"train:a"}
    assert (ran_project / "outputs/dev/a/train/model.pkl").read_text().endswith("|B")


def test_a_module_on_pythonpath_in_a_namespace_an_installed_distribution_shares_is_tracked_by_content(
        ran_project: Path, tmp_path: Path) -> None:
    lib, installed = tmp_path / "lib", tmp_path / "installed"
    (lib / "nsco").mkdir(parents=True)
    (lib / "nsco" / "utils.py").write_text("def tag():\n    return 'A'\n")
    (installed / "nsco" / "core").mkdir(parents=True)
    (installed / "nsco" / "core" / "__init__.py").write_text("")
    (installed / "nsco_core-1.0.dist-info").mkdir()
    (installed / "nsco_core-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: nsco-core\n"
                                                                    "Version: 1.0\n")
    (installed / "nsco_core-1.0.dist-info" / "top_level.txt").write_text("nsco\n")
    edit(ran_project / "tiny_steps.py", "import json\n", "import json\n\nfrom nsco.utils import tag\n")
    edit(ran_project / "tiny_steps.py", "|{token}", "|{token}|{tag()}")
    env = {"PYTHONPATH": f"{lib}{os.pathsep}{installed}"}
    assert doit(ran_project, "train:a", **env) >= {"train:a"}
    (lib / "nsco" / "utils.py").write_text("def tag():\n    return 'B'\n")
    assert doit(ran_project, "train:a", **env) >= {"train:a"}
