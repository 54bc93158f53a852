"""doit entry point: the step tasks declared in conf/, and this project's own tasks, all on one config."""

from __future__ import annotations

import json
from pathlib import Path

from doit.tools import config_changed

from mlops.doit_adapter import TaskContext, config_task, dodo

globals().update(dodo(__file__))


@config_task
def task_publish(ctx: TaskContext) -> dict:
    """Write this env's manifest of the current models and where they would be uploaded (gcp.bucket)."""
    destination = f"gs://{ctx.config.get('gcp.bucket')}/{ctx.config.get('version')}"
    models = {pipeline: outputs["model"] for pipeline, outputs in ctx.outputs("train").items()}
    manifest = ctx.env_dir / "publish" / "manifest.json"
    return {
        "actions": [(write_manifest, [models, destination, manifest])],
        "file_dep": list(models.values()),
        "task_dep": [f"train:{pipeline}" for pipeline in sorted(models)],  # made first, in this order
        "targets": [str(manifest)],
        "uptodate": [config_changed({"destination": destination})],
        "clean": True,
    }


def write_manifest(models: dict[str, str], destination: str, manifest: Path) -> None:
    """Write, per pipeline, the model file, its size and where it would be uploaded."""
    entries = {pipeline: {"model": path, "bytes": Path(path).stat().st_size,
                          "upload_to": f"{destination}/{pipeline}/{Path(path).name}"}
               for pipeline, path in sorted(models.items())}
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"destination": destination, "models": entries}, indent=2) + "\n")
