"""A no-op told from the fingerprint of the last one: it answers only when every verdict would be the same."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import all_tasks, doit, edit, run_doit, tiny_project

Change = Callable[[Path], None]


def fingerprinted(root: Path, *args: str, **env: str) -> None:
    """Run until a no-op wrote its fingerprint for these words."""
    doit(root, *args, **env)
    assert doit(root, *args, **env) == set()
    assert any((root / "outputs/dev/.noop").glob("*.json"))


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


def test_the_fingerprint_answers_for_a_no_op_and_prints_what_doit_printed(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    doit(root)
    checked = run_doit(root)
    fingerprinted(root)
    answered = run_doit(root)
    assert answered.returncode == 0 and answered.stdout == checked.stdout and answered.stderr == checked.stderr
    assert sorted(line[3:] for line in answered.stdout.splitlines()) == sorted(all_tasks())
    # Proof that it answered without the checks: a record changed in place, its file's stat put back, is not seen.
    state = root / "outputs/dev/.doit-state.json"
    before = state.stat()
    folded = state.read_text()
    assert '"DigestChecker"' in folded  # a checker of another name: doit would run the task
    state.write_text(folded.replace('"DigestChecker"', '"DigestChecxer"', 1))
    os.utime(state, ns=(before.st_atime_ns, before.st_mtime_ns))
    if state.stat().st_ino == before.st_ino:
        assert run_doit(root).stdout == checked.stdout


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
