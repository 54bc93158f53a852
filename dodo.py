"""doit entry point: DOIT_CONFIG and the task creators, all from mlops.tasks (no step logic here)."""

from pathlib import Path

from mlops.tasks import dodo

globals().update(dodo(Path(__file__).parent))
