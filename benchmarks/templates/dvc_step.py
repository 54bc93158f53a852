"""One benchmark step of one pipeline, as a DVC stage's command: python dvc_step.py STEP PIPELINE [ALPHA].

Copied into each generated dvc project, next to bench_steps.py and dvc.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import bench_steps

DATE = "2026-01-01"


def main(step: str, pipeline: str, alpha: str = "") -> None:
    """Call the step function on the pipeline's files, its output folder made first."""
    out = {kind: Path(f"outputs/{pipeline}/{kind}") for kind in ("prepare", "train", "evaluate", "predict")}
    features, model = out["prepare"] / "features.csv", out["train"] / "model.pkl"
    calls = {
        "prepare": ({"raw": Path(f"data/{pipeline}.txt")}, {}, {"features": features}),
        "train": ({"features": features}, {"alpha": float(alpha or 0)}, {"model": model}),
        "evaluate": ({"features": features, "model": model}, {}, {"metrics": out["evaluate"] / "metrics.json"}),
        "predict": ({"model": model}, {"date": DATE}, {"forecast": out["predict"] / f"forecast_{DATE}.csv"}),
    }
    inputs, params, outputs = calls[step]
    for path in outputs.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    getattr(bench_steps, step)(inputs, params, outputs)


if __name__ == "__main__":
    main(*sys.argv[1:])
