"""`doit graph`: the planned steps as Mermaid, DOT, SVG or PNG, coloured by what will run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import run_doit

FAILS = "\n\ndef fails(inputs, params, outputs):\n    raise ValueError('no')\n"


def test_mermaid_shows_each_step_by_pipeline_with_its_status(ran_project: Path) -> None:
    with (ran_project / "tiny_steps.py").open("a") as steps:
        steps.write(FAILS)
    assert run_doit(ran_project, "train:b", "pipelines.b.train.fn=tiny_steps.fails").returncode == 1
    result = run_doit(ran_project, "graph", "pipelines.a.train.alpha=0.3", "pipelines.b.train.fn=tiny_steps.fails")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart LR" and "  subgraph a[a]" in lines and "  subgraph b[b]" in lines
    assert '    prepare_a["prepare"]:::uptodate' in lines
    assert '    train_a["train: config pipelines.a.train.alpha: 0.5 -#gt; 0.3"]:::run' in lines
    assert any(line.startswith('    train_b["train: failed last time (tiny_steps.fails raised ValueError: no')
               and line.endswith(":::failed") for line in lines)
    assert {"  prepare_a --> train_a", "  train_a --> evaluate_a", "  train_a --> predict_a"} <= set(lines)
    narrowed = run_doit(ran_project, "graph", "train:a").stdout.splitlines()
    assert [line for line in narrowed if "[" in line and "subgraph" not in line] == ['    train_a["train"]:::uptodate']


def test_dot_and_its_pictures(ran_project: Path, tmp_path: Path) -> None:
    out = tmp_path / "dag.dot"
    assert run_doit(ran_project, "graph", "--out", str(out)).returncode == 0
    text = out.read_text()
    assert text.startswith("digraph steps {") and '"prepare:a" -> "train:a";' in text
    assert 'subgraph "cluster_a"' in text and 'tooltip="up to date"' in text
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's dot is needed for this test: apt-get install graphviz (.ci/run installs it)")
    for suffix, magic in ((".svg", b"<?xml"), (".png", b"\x89PNG")):
        picture = tmp_path / f"dag{suffix}"
        result = run_doit(ran_project, "graph", "--out", str(picture))
        assert result.returncode == 0, result.stderr
        assert picture.read_bytes().startswith(magic)
    assert "<title>train:a</title>" in (tmp_path / "dag.svg").read_text()


def test_pictures_without_graphviz_and_unknown_formats_are_one_line(ran_project: Path, tmp_path: Path) -> None:
    no_dot = {"PATH": str(tmp_path)}  # a PATH where no dot is found
    result = run_doit(ran_project, "graph", "--out", "dag.svg", env=no_dot)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith("mlops: error: --out dag.svg needs Graphviz's dot, which is not installed")
    assert run_doit(ran_project, "graph", "--out", "dag.dot", env=no_dot).returncode == 0
    result = run_doit(ran_project, "graph", "--out", "dag.gif")
    assert result.stderr == "mlops: error: --out dag.gif: write one of .mmd, .dot, .svg, .png\n"
    result = run_doit(ran_project, "graph", "trian")
    assert (result.returncode, result.stderr.count("\n")) == (1, 1)
    assert result.stderr.startswith("mlops: error: trian: no such task; choose one of:")
