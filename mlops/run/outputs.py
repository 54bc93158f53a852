"""Deleting a step's outputs (`doit clean`), never outside the outputs root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlops.plan.steps import Step
from mlops.run.provenance import FILE
from mlops.run.runner import inside


def clean_outputs(step: Step) -> None:
    """Delete the step's outputs (every date's, for a dated step) and its provenance, refusing any outside the
    outputs root."""
    paths = [str(path) for file in (*step.kind.outputs.values(), FILE)
             for path in Path(step.folder).glob(file.format(date="*"))]
    for path in paths:
        if not inside(path, step.root):
            print(f"mlops: not deleting {path}: it resolves outside {step.root}/", file=sys.stderr)
        elif os.path.lexists(path):
            os.unlink(path)
