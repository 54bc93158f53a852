"""Bare doit: the benchmark's DAG written by hand, with the same files and step functions as the mlops project.

Copied as dodo.py into each generated bare project, next to bench_steps.py, data/ and params.json
(per-pipeline parameters). The bare-json variant appends DOIT_CONFIG = {"backend": "json"}.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bench_steps
from doit.tools import config_changed

DATE = "2026-01-01"
STEPS_FILE = "bench_steps.py"
PARAMS: dict[str, dict[str, Any]] = json.loads(Path("params.json").read_text())

Step = Callable[..., None]


def out(pipeline: str, step: str, name: str) -> str:
    """Return the path of one step's output file."""
    return f"outputs/{pipeline}/{step}/{name}"


def run(fn: Step, inputs: dict[str, str], params: dict[str, Any], outputs: dict[str, str]) -> None:
    """Create the output folders, then call the step function with paths."""
    for path in outputs.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fn({k: Path(v) for k, v in inputs.items()}, params, {k: Path(v) for k, v in outputs.items()})


def subtask(fn: Step, pipeline: str, inputs: dict[str, str], params: dict[str, Any],
            outputs: dict[str, str], **extra: Any) -> dict[str, Any]:
    """Return one pipeline's subtask: inputs and step code in, outputs out."""
    return {
        "name": pipeline,
        "actions": [(run, [fn, inputs, params, outputs])],
        "file_dep": [*inputs.values(), STEPS_FILE],
        "targets": list(outputs.values()),
        **extra,
    }


def task_prepare() -> Iterator[dict[str, Any]]:
    """Build each pipeline's features from its data."""
    for p in PARAMS:
        yield subtask(bench_steps.prepare, p, {"raw": f"data/{p}.txt"}, {},
                      {"features": out(p, "prepare", "features.csv")})


def task_train() -> Iterator[dict[str, Any]]:
    """Fit each pipeline's model on its features."""
    for p in PARAMS:
        params = PARAMS[p]["train"]
        yield subtask(bench_steps.train, p, {"features": out(p, "prepare", "features.csv")}, params,
                      {"model": out(p, "train", "model.pkl")}, uptodate=[config_changed(params)])


def task_evaluate() -> Iterator[dict[str, Any]]:
    """Score each pipeline's model; write metrics as JSON."""
    for p in PARAMS:
        inputs = {"features": out(p, "prepare", "features.csv"), "model": out(p, "train", "model.pkl")}
        yield subtask(bench_steps.evaluate, p, inputs, {}, {"metrics": out(p, "evaluate", "metrics.json")})


def task_predict() -> Iterator[dict[str, Any]]:
    """Forecast one day with each pipeline's model; write a CSV."""
    for p in PARAMS:
        yield subtask(bench_steps.predict, p, {"model": out(p, "train", "model.pkl")}, {"date": DATE},
                      {"forecast": out(p, "predict", f"forecast_{DATE}.csv")})
