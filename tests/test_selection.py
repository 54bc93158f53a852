"""`doit <step task>` makes only the tasks its words reach, and runs exactly what making every task would run."""

from __future__ import annotations

from pathlib import Path

from helpers import doit, edit, run_doit, skipped, tiny_project

OWN_TASKS = '''

def task_raw_c():
    """Write data/c.txt, which pipeline c's prepare reads, once prepare:b is made."""
    return {"actions": ["echo made c > data/c.txt"], "targets": ["data/c.txt"], "task_dep": ["prepare:b"],
            "uptodate": [True]}


def task_everything():
    """Depend on every train step, by name and by file."""
    return {"actions": ["true"], "task_dep": ["train:a", "train:b", "train:c"],
            "file_dep": ["outputs/dev/a/train/model.pkl"]}
'''


def project(tmp_path: Path) -> Path:
    root = tiny_project(tmp_path / "p", ("a", "b", "c"))
    (root / "data" / "c.txt").unlink()
    with (root / "dodo.py").open("a") as dodo:
        dodo.write(OWN_TASKS)
    return root


def test_a_step_word_runs_its_closure_and_a_task_that_makes_its_input(tmp_path: Path) -> None:
    root = project(tmp_path)
    result = run_doit(root, "train:c")
    assert result.returncode == 0, result.stderr
    assert {"raw_c", "prepare:b", "prepare:c", "train:c"} <= set(result.stdout.split())
    assert "prepare:a" not in result.stdout and "everything" not in result.stdout
    assert doit(root, "train:a", "evaluate:b") == {"prepare:a", "train:a", "evaluate:b", "train:b"}
    assert doit(root) == {"evaluate:a", "evaluate:c", "predict:a", "predict:b", "predict:c"}
    assert doit(root, "everything") == {"everything"}  # not a default task


def test_a_narrowed_run_sees_what_a_full_run_sees(tmp_path: Path) -> None:
    root = project(tmp_path)
    doit(root)
    edit(root / "data/a.txt", "raw a", "raw a, changed")
    assert doit(root, "train:a") == {"prepare:a", "train:a"}
    assert skipped(run_doit(root, "evaluate:a", "train:b")) == {"prepare:a", "train:a", "prepare:b", "train:b"}
    assert doit(root, "evaluate:a") == set()
    assert doit(root, "train") == set()  # a kind: every pipeline's step of it
    assert doit(root) == {"predict:a"}


def test_list_without_all_makes_only_the_groups_and_shows_what_it_showed(tmp_path: Path) -> None:
    root = project(tmp_path)
    listed = run_doit(root, "list").stdout.split("\n")
    groups = ["evaluate", "everything", "predict", "prepare", "print_config", "publish", "raw_c", "train"]
    assert [line.split()[0] for line in listed if line] == groups
    assert len(run_doit(root, "list", "--all").stdout.splitlines()) == len(groups) + 4 * 3
    assert run_doit(root, "list", "-q", "--all", "train").stdout.split() == ["train", "train:a", "train:b", "train:c"]
    status = [line[0] for line in run_doit(root, "list", "--status").stdout.splitlines()]
    assert status == ["R", "E", "R", "R", "R", "R", "R", "R"]  # everything: its file dependency is not made yet


COMBINE = '''

def task_combine():
    """Join every pipeline's features, after every prepare step (a group)."""
    return {"actions": ["cat outputs/dev/*/prepare/features.csv > data/combined.txt"], "task_dep": ["prepare"],
            "targets": ["data/combined.txt"]}
'''


def test_a_project_task_that_needs_a_whole_kind_gets_every_step_of_it(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", ("a", "b"))
    with (root / "dodo.py").open("a") as dodo:
        dodo.write(COMBINE)
    edit(root / "conf/pipelines/a.yaml", "train:\n  fn: tiny_steps.train\n",
         "train:\n  fn: tiny_steps.train\n  inputs:\n    combined: data/combined.txt\n")
    assert doit(root, "train:a") == {"prepare:a", "prepare:b", "combine", "train:a"}
    assert "RAW B" in (root / "data/combined.txt").read_text()
