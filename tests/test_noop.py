"""A no-op told from the fingerprint of the last one: it answers only when every verdict would be the same."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import all_tasks, doit, edit, run_doit, tiny_project

Change = Callable[[Path], None]


def fingerprinted(root: Path, *args: str, **env: str) -> None:
    """Run until a no-op wrote its fingerprint for these words (a run, then a no-op that writes it)."""
    started = time.time_ns()
    doit(root, *args, **env)
    assert doit(root, *args, **env) == set()
    assert any(path.stat().st_mtime_ns >= started for path in (root / "outputs/dev/.noop").glob("*.json"))


def touch(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def forget(root: Path) -> None:
    assert run_doit(root, "forget", "train:a").returncode == 0


CHANGES: list[tuple[str, Change, set[str]]] = [
    ("an input's content", lambda root: edit(root / "data/a.txt", "raw a", "raw a2"), {"prepare:a", "train:a",
                                                                                        "evaluate:a", "predict:a"}),
    ("an input touched", lambda root: touch(root / "data/b.txt"), set()),
    ("an output deleted", lambda root: (root / "outputs/dev/a/evaluate/metrics.json").unlink(), {"evaluate:a"}),
    ("an output edited", lambda root: (root / "outputs/dev/b/train/model.pkl").write_text("x"), {"train:b"}),
    ("the step code", lambda root: edit(root / "tiny_steps.py", "len(inputs[\"model\"].read_text())",
                                        "len(inputs['model'].read_text()) + 1"), {"evaluate:a", "evaluate:b"}),
    ("a pipeline file", lambda root: edit(root / "conf/pipelines/b.yaml", "alpha: 0.5", "alpha: 0.6"),
     {"train:b", "evaluate:b", "predict:b"}),
    ("the state", forget, {"train:a"}),
    ("the code's folder", lambda root: (root / "tiny_helpers.py").write_text("X = 1\n"), set()),
]


@pytest.mark.parametrize(("what", "change", "expected"), CHANGES, ids=[what for what, _, _ in CHANGES])
def test_any_change_a_verdict_depends_on_is_seen(tmp_path: Path, what: str, change: Change,
                                                 expected: set[str]) -> None:
    root = tiny_project(tmp_path / "p")
    fingerprinted(root)
    change(root)
    assert doit(root) == expected, what
    assert doit(root) == set()


SPY = '''
import os

from mlops.doit_adapter import check

_explain = check.StepCheck.explain


def explain(self, *args, **kwargs):
    with open(os.environ["MLOPS_SPY_LOG"], "a") as log:
        log.write(self.step.task + "\\n")
    return _explain(self, *args, **kwargs)


check.StepCheck.explain = explain
'''


def test_the_fingerprint_answers_for_a_no_op_without_a_check_and_prints_what_doit_printed(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(SPY)  # counts the steps' up-to-date checks
    log = tmp_path / "checks.log"
    env = {"PYTHONPATH": str(spy), "MLOPS_SPY_LOG": str(log)}
    doit(root, **env)
    checks = len(log.read_text().splitlines())
    checked = run_doit(root, env=env)  # a no-op, every step checked: it writes the fingerprint
    checks += 8
    assert len(log.read_text().splitlines()) == checks
    answered = run_doit(root, env=env)
    assert answered.returncode == 0 and answered.stdout == checked.stdout and answered.stderr == checked.stderr
    assert sorted(line[3:] for line in answered.stdout.splitlines()) == sorted(all_tasks())
    assert len(log.read_text().splitlines()) == checks  # told from the fingerprint: no step was checked


def test_other_words_env_values_and_options_are_checked_as_usual(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    fingerprinted(root)
    assert doit(root, "train:a", "pipelines.a.train.alpha=0.9") == {"train:a"}
    assert doit(root, MLOPS_TEST_TOKEN="token-1234") == {"train:a", "train:b", "evaluate:a", "evaluate:b",
                                                         "predict:a", "predict:b"}
    fingerprinted(root, MLOPS_TEST_TOKEN="token-1234")
    assert doit(root, "-a", "prepare:a", MLOPS_TEST_TOKEN="token-1234") == {"prepare:a"}
    assert len(run_doit(root, "--reporter", "json", env={"MLOPS_TEST_TOKEN": "token-1234"}).stdout) > 0


def test_a_failed_run_leaves_no_fingerprint_and_its_step_runs_again(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    fingerprinted(root)
    shutil.copy(root / "tiny_steps.py", tmp_path / "good.py")
    edit(root / "tiny_steps.py", "def predict(inputs, params, outputs):\n", "def predict(inputs, params, outputs):\n"
         "    raise ValueError('no')\n")
    assert run_doit(root).returncode != 0
    shutil.copy(tmp_path / "good.py", root / "tiny_steps.py")
    assert doit(root) == {"predict:a"}  # doit stopped at the first failure: predict:b never ran


FETCH = '''

def task_fetch():
    """Write pipeline a's raw input."""
    from doit.tools import config_changed
    return {"actions": ["echo 'raw a v2' > data/a.txt"], "targets": ["data/a.txt"],
            "uptodate": [config_changed("raw a v2")]}
'''
FETCHED = {"fetch", "prepare:a", "train:a", "evaluate:a", "predict:a"}


def test_another_dodo_file_is_another_command(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    (root / "dodo2.py").write_text((root / "dodo.py").read_text() + FETCH)
    fingerprinted(root)
    assert doit(root, "-f", "dodo2.py") == FETCHED


def test_a_module_the_dodo_file_imports_is_watched(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    (root / "project_tasks.py").write_text("# the project's own tasks\n")
    with (root / "dodo.py").open("a") as dodo:
        dodo.write("\nfrom project_tasks import *  # noqa: F403\n")
    fingerprinted(root)
    (root / "project_tasks.py").write_text(FETCH)
    assert doit(root) == FETCHED


def test_an_edit_that_keeps_size_and_mtime_is_seen(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    fingerprinted(root)
    steps = root / "tiny_steps.py"
    before = steps.stat()
    steps.write_text(steps.read_text().replace("|alpha=", "|ALPHA="))  # the same size
    os.utime(steps, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime: the ctime tells
    assert doit(root) == {"train:a", "train:b", "evaluate:a", "evaluate:b", "predict:a", "predict:b"}


def test_a_damaged_fingerprint_means_checking_as_usual(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    fingerprinted(root)
    for saved in (root / "outputs/dev/.noop").glob("*.json"):
        saved.write_text('{"key": "x", "stats": {"a\\u0000b": []}, "printed": []}')
    result = run_doit(root)
    assert result.returncode == 0 and "Traceback" not in result.stderr and len(result.stdout.splitlines()) == 8


def test_after_a_data_change_only_the_steps_whose_files_changed_are_checked(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(SPY)
    log = tmp_path / "checks.log"
    env = {"PYTHONPATH": str(spy), "MLOPS_SPY_LOG": str(log)}
    fingerprinted(root, **env)
    log.write_text("")
    edit(root / "data/a.txt", "raw a", "raw a2")
    assert doit(root, **env) == {"prepare:a", "train:a", "evaluate:a", "predict:a"}
    # b's steps were up to date by their files' stats; a's were checked (train:a when its input changed).
    assert set(log.read_text().split()) == {"prepare:a", "train:a", "evaluate:a", "predict:a"}
    touch(root / "data/b.txt")
    assert doit(root, **env) == set()  # no fingerprint after a run that ran: every step checked
