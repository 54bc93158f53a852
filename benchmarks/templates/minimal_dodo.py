"""Minimal doit: the benchmark's DAG with nothing but doit's defaults, file_dep and targets.

Copied as dodo.py into each generated minimal project, next to bench_steps.py and data/. The pipelines are
the files in data/; alpha is a constant, so there is no config and no parameter to check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bench_steps

ALPHA = 1.0
DATE = "2026-01-01"
STEPS_FILE = "bench_steps.py"
PIPELINES = sorted(path.stem for path in Path("data").glob("*.txt"))


def out(pipeline: str, step: str, name: str) -> str:
    """Return the path of one step's output file."""
    return f"outputs/{pipeline}/{step}/{name}"


def run(fn: Callable[..., None], inputs: dict[str, str], params: dict[str, Any], outputs: dict[str, str]) -> None:
    """Create the output folders, then call the step function with paths."""
    for path in outputs.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fn({k: Path(v) for k, v in inputs.items()}, params, {k: Path(v) for k, v in outputs.items()})


def subtask(fn: Callable[..., None], pipeline: str, inputs: dict[str, str], params: dict[str, Any],
            outputs: dict[str, str]) -> dict[str, Any]:
    """Return one pipeline's subtask: an action, its input files and step code, its output files."""
    return {"name": pipeline, "actions": [(run, [fn, inputs, params, outputs])],
            "file_dep": [*inputs.values(), STEPS_FILE], "targets": list(outputs.values())}


def task_prepare() -> Iterator[dict[str, Any]]:
    """Build each pipeline's features from its data."""
    for p in PIPELINES:
        yield subtask(bench_steps.prepare, p, {"raw": f"data/{p}.txt"}, {},
                      {"features": out(p, "prepare", "features.csv")})


def task_train() -> Iterator[dict[str, Any]]:
    """Fit each pipeline's model on its features."""
    for p in PIPELINES:
        yield subtask(bench_steps.train, p, {"features": out(p, "prepare", "features.csv")}, {"alpha": ALPHA},
                      {"model": out(p, "train", "model.pkl")})


def task_evaluate() -> Iterator[dict[str, Any]]:
    """Score each pipeline's model; write metrics as JSON."""
    for p in PIPELINES:
        inputs = {"features": out(p, "prepare", "features.csv"), "model": out(p, "train", "model.pkl")}
        yield subtask(bench_steps.evaluate, p, inputs, {}, {"metrics": out(p, "evaluate", "metrics.json")})


def task_predict() -> Iterator[dict[str, Any]]:
    """Forecast one day with each pipeline's model; write a CSV."""
    for p in PIPELINES:
        yield subtask(bench_steps.predict, p, {"model": out(p, "train", "model.pkl")}, {"date": DATE},
                      {"forecast": out(p, "predict", f"forecast_{DATE}.csv")})
