"""Every fast path answers as a cold run would: the file identity, watch lists from the records, options and
environment in the keys, a record saved by another run meanwhile, a dated step's inputs made first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers import all_tasks, doit, edit, environment, ran, run_doit, skipped, start_doit, tiny_project, wait_for

A_STEPS = {"prepare:a", "train:a", "evaluate:a", "predict:a"}
B_STEPS = {"prepare:b", "train:b", "evaluate:b", "predict:b"}


def rewrite_keeping_size_and_times(path: Path, old: str, new: str) -> None:
    """Replace `old` with `new` (as long) in a file and put its mtime back: only the ctime tells."""
    assert len(old) == len(new)
    before = path.stat()
    edit(path, old, new)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


def test_the_fingerprint_watches_the_code_of_steps_it_answered_by_their_files(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    (root / "helper_b.py").write_text("def shout(text):\n    return text.upper()\n")
    (root / "steps_b.py").write_text("from helper_b import shout\n\n\ndef prepare(inputs, params, outputs):\n"
                                     "    outputs['features'].write_text(shout(inputs['raw'].read_text()))\n")
    edit(root / "conf/pipelines/b.yaml", "fn: tiny_steps.prepare", "fn: steps_b.prepare")
    assert doit(root) == all_tasks()
    assert doit(root) == set()  # a no-op: it writes the fingerprint
    os.utime(root / "data/a.txt")  # touched, not changed: a's steps are checked, b's answered by their files
    assert doit(root) == set()  # a no-op again, whose fingerprint lists b's code from its records
    edit(root / "helper_b.py", "upper()", "lower()")
    assert doit(root) == B_STEPS
    assert doit(root) == set()


def test_a_library_upgrade_in_a_virtual_environment_inside_the_project_reruns_its_users(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", pipelines=("a",))
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.run([str(venv / "bin/python"), "-c", where], check=True, capture_output=True,
                               text=True).stdout.strip())
    # doit, mlops and the rest from the test's own environment (its .pth files too: mlops is installed editable)
    (site / "outer.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    install_fake(site, "1.0")
    edit(root / "tiny_steps.py", "import json\n", "import json\n\nimport fakedist\n")
    python = [str(venv / "bin/python"), "-m", "doit"]

    def run(*args: str) -> set[str]:
        result = subprocess.run([*python, *args], cwd=root, env=environment(), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return ran(result)

    assert run() == A_STEPS
    assert run() == set()
    install_fake(site, "1.1")
    assert run() == A_STEPS
    assert run() == set()


def install_fake(site: Path, version: str) -> None:
    """Install (or upgrade to) version `version` of a distribution `fakedist` into a site folder."""
    for old in site.glob("fakedist-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    (site / "fakedist").mkdir(exist_ok=True)
    (site / "fakedist" / "__init__.py").write_text(f"VERSION = {version!r}\n")
    info = site / f"fakedist-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fakedist\nVersion: {version}\n")
    (info / "top_level.txt").write_text("fakedist\n")


@pytest.mark.parametrize("what", ["input", "output", "pipeline file", "step module"])
def test_a_rewrite_that_keeps_size_and_timestamps_is_seen(tmp_path: Path, what: str) -> None:
    root = tiny_project(tmp_path / "p")
    assert doit(root) == all_tasks()
    assert doit(root) == set()  # the caches know every file now: digests, config, the no-op's fingerprint
    changes = {
        "input": (root / "data/a.txt", "raw a", "raw z", A_STEPS),
        "output": (root / "outputs/dev/a/train/model.pkl", "alpha=0.5", "alpha=0.7", {"train:a"}),
        "pipeline file": (root / "conf/pipelines/a.yaml", "alpha: 0.5", "alpha: 0.7",
                          {"train:a", "evaluate:a", "predict:a"}),
        "step module": (root / "tiny_steps.py", "|alpha=", "|ALPHA=", all_tasks() - {"prepare:a", "prepare:b"}),
    }
    path, old, new, expected = changes[what]
    rewrite_keeping_size_and_times(path, old, new)
    assert doit(root) == expected
    assert doit(root) == set()


def test_a_dated_steps_input_made_by_a_project_task_is_made_first(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", pipelines=("a",))
    with (root / "dodo.py").open("a") as dodo:
        dodo.write('''

@config_task
def task_calendar(ctx: TaskContext) -> dict:
    """Write the calendar the forecasts read."""
    target = ctx.env_dir / "calendar.txt"
    return {"actions": [f"echo holidays > {target}"], "targets": [str(target)], "uptodate": [True]}
''')
    edit(root / "conf/pipelines/a.yaml", "  fn: tiny_steps.predict\n",
         "  fn: tiny_steps.predict\n  inputs: {calendar: outputs/dev/calendar.txt}\n")
    assert doit(root, "predict:a") == {"calendar", "prepare:a", "train:a", "predict:a"}
    assert (root / "outputs/dev/calendar.txt").read_text() == "holidays\n"
    assert doit(root, "predict:a", "--date", "2026-03-01") == {"predict:a"}


def test_a_step_another_run_made_after_this_one_loaded_the_state_is_taken_not_made_again(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    (root / "gate.py").write_text('''\
import time
from pathlib import Path

import tiny_steps


def prepare(inputs, params, outputs):
    Path("gate.waiting").touch()
    while not Path("gate.open").exists():
        time.sleep(0.01)
    tiny_steps.prepare(inputs, params, outputs)
''')
    edit(root / "conf/pipelines/a.yaml", "fn: tiny_steps.prepare", "fn: gate.prepare")
    first = start_doit(root)  # loads the state, then waits in prepare:a
    wait_for(lambda: (root / "gate.waiting").exists())
    assert doit(root, "evaluate:b") == {"prepare:b", "train:b", "evaluate:b"}  # meanwhile, another run
    (root / "gate.open").touch()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    marks = {line[3:].split(" ")[0]: line[:2] for line in out.splitlines()}
    assert {task for task, mark in marks.items() if mark == "~ "} == {"prepare:b", "train:b", "evaluate:b"}
    assert {task for task, mark in marks.items() if mark == ". "} == A_STEPS | {"predict:b"}


def test_the_fingerprint_of_a_run_with_another_state_file_watches_that_file(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    other = ("--db-file", "state/other-state.json")  # in a folder of the project not made yet
    assert doit(root, *other) == all_tasks()
    assert doit(root, *other) == set()  # writes the fingerprint
    assert run_doit(root, "forget", *other, "train:a").returncode == 0
    result = run_doit(root, *other)
    assert result.returncode == 0 and ran(result) == {"train:a"} and "train:a" not in skipped(result)


def test_a_module_on_pythonpath_outside_the_project_is_tracked_as_code(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "team_features.py").write_text("def scale(text):\n    return text * 2\n")
    edit(root / "tiny_steps.py", "import json\n", "import json\n\nfrom team_features import scale\n")
    edit(root / "tiny_steps.py", 'inputs["raw"].read_text().upper()', 'scale(inputs["raw"].read_text().upper())')
    env = {"PYTHONPATH": str(shared)}
    assert doit(root, **env) == all_tasks()
    assert doit(root, **env) == set()
    assert doit(root, **env) == set()  # answered by the fingerprint, which lists the module from the records
    edit(shared / "team_features.py", "text * 2", "text * 3")
    assert doit(root, **env) == A_STEPS | B_STEPS
    assert doit(root, **env) == set()


BYTECODE = {"PYTHONDONTWRITEBYTECODE": ""}  # Python writes its bytecode caches, as by default


def test_dodo_py_edited_with_its_size_and_mtime_kept_runs_as_it_reads_now(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    assert "publish" in doit(root, "publish", **BYTECODE)
    rewrite_keeping_size_and_times(root / "dodo.py", 'f"gs://', 'f"s3://')
    assert doit(root, "publish", **BYTECODE) == {"publish"}
    assert '"s3://' in (root / "outputs/dev/publish/manifest.json").read_text()


def test_a_step_module_dodo_py_imports_runs_as_it_reads_now(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", pipelines=("a",))
    edit(root / "dodo.py", "from doit.tools import config_changed\n",
         "from doit.tools import config_changed\n\nimport tiny_steps  # noqa: F401\n")
    assert doit(root, **BYTECODE) == A_STEPS
    for cached in root.rglob("__pycache__"):
        shutil.rmtree(cached)
    assert run_doit(root, "list", env=BYTECODE).returncode == 0  # Python caches tiny_steps' bytecode again
    rewrite_keeping_size_and_times(root / "tiny_steps.py", "|alpha=", "|ALPHA=")
    assert doit(root, "train:a", **BYTECODE) == {"train:a"}
    assert "|ALPHA=0.5|" in (root / "outputs/dev/a/train/model.pkl").read_text()
    assert doit(root, "train:a", **BYTECODE) == set()


def test_a_version_rewritten_in_place_in_a_distributions_metadata_reruns_its_users(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", pipelines=("a",))
    lib = tmp_path / "lib"
    (lib / "extpkg").mkdir(parents=True)
    (lib / "extpkg" / "__init__.py").write_text("")
    (lib / "extpkg.egg-info").mkdir()  # as a legacy `pip install -e` (setup.py develop) keeps it
    (lib / "extpkg.egg-info" / "top_level.txt").write_text("extpkg\n")
    info = lib / "extpkg.egg-info" / "PKG-INFO"
    info.write_text("Metadata-Version: 2.1\nName: extpkg\nVersion: 1.0\n")
    edit(root / "tiny_steps.py", "import json\n", "import json\n\nimport extpkg  # noqa: F401\n")
    env = {"PYTHONPATH": str(lib)}
    assert doit(root, "train:a", **env) == {"prepare:a", "train:a"}
    assert doit(root, "train:a", **env) == set()  # writes the fingerprint
    info.write_text("Metadata-Version: 2.1\nName: extpkg\nVersion: 1.1\n")
    assert doit(root, "train:a", **env) == {"prepare:a", "train:a"}


def test_a_module_made_in_a_namespace_package_folder_found_first_is_seen(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", pipelines=("a",))
    lib = tmp_path / "lib"
    (lib / "nspkg").mkdir(parents=True)
    (lib / "nspkg" / "mod.py").write_text("def tag():\n    return 'LIB'\n")
    (root / "nspkg").mkdir()
    (root / "nspkg" / "other.py").write_text("X = 1\n")  # the project's part of the namespace package nspkg
    edit(root / "tiny_steps.py", "import json\n", "import json\n\nfrom nspkg.mod import tag\n")
    edit(root / "tiny_steps.py", "|{token}", "|{token}|{tag()}")
    env = {"PYTHONPATH": str(lib)}
    assert doit(root, "train:a", **env) == {"prepare:a", "train:a"}
    assert doit(root, "train:a", **env) == set()  # writes the fingerprint
    (root / "nspkg" / "mod.py").write_text("def tag():\n    return 'ROOT'\n")  # `nspkg.mod` is this one now
    assert doit(root, "train:a", **env) == {"prepare:a", "train:a"}
    assert (root / "outputs/dev/a/train/model.pkl").read_text().endswith("|ROOT")
