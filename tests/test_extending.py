"""The README's recipes, run as written: a new step kind from config alone, and a project's own task."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import REPO, ran, run_doit

README = (REPO / "README.md").read_text()


def recipe_blocks() -> dict[str, str]:
    """Return the README's YAML blocks that say which conf/ file they go into, by that file."""
    blocks = {}
    for block in re.findall(r"```yaml\n(.*?)```", README, re.DOTALL):
        first, _, rest = block.partition("\n")
        found = re.match(r"( *)# (conf/\S+):", first)
        if found:  # the block sits in a list item: its lines carry the item's indent
            indent = len(found.group(1))
            blocks[found.group(2)] = "".join(line[indent:] + "\n" for line in rest.splitlines())
    return blocks


def test_the_readme_recipe_adds_a_step_kind_without_touching_mlops(demo: Path) -> None:
    blocks = recipe_blocks()
    assert set(blocks) == {"conf/config.yaml", "conf/pipelines/pipeline_1.yaml"}
    for relative, text in blocks.items():
        path = demo / relative
        path.write_text(path.read_text() + text)
    listed = run_doit(demo, "list")
    assert "explain        Break each pipeline's holdout error down by hour of day; write JSON." in listed.stdout
    result = run_doit(demo, "explain:pipeline_1")
    assert result.returncode == 0, result.stderr
    assert ran(result) == {"prepare:pipeline_1", "train:pipeline_1", "explain:pipeline_1"}
    report = json.loads((demo / "outputs" / "dev" / "pipeline_1" / "explain" / "error_by_hour.json").read_text())
    assert list(report) == [str(hour) for hour in range(24)] and all(mae > 0 for mae in report.values())
    assert "explain:pipeline_2" not in run_doit(demo, "list", "--all").stdout  # it has no explain section
    assert ran(run_doit(demo, "explain:pipeline_1")) == set()


def test_a_config_task_sees_the_one_config_and_is_incremental(project: Path) -> None:
    first = run_doit(project, "publish")
    assert first.returncode == 0, first.stderr
    assert ran(first) == {"prepare:a", "prepare:b", "train:a", "train:b", "publish"}
    manifest = json.loads((project / "outputs" / "dev" / "publish" / "manifest.json").read_text())
    assert manifest["destination"] == "gs://xxx-dev-models/0.1.0"
    assert manifest["models"]["b"] == {"model": "outputs/dev/b/train/model.pkl", "bytes": 20,
                                       "upload_to": "gs://xxx-dev-models/0.1.0/b/model.pkl"}
    assert ran(run_doit(project, "publish")) == set()
    # another bucket for one command: the manifest is written again, for that command's config
    moved = run_doit(project, "publish", "gcp.bucket=elsewhere")
    assert ran(moved) == {"publish"}
    assert json.loads((project / "outputs" / "dev" / "publish" / "manifest.json").read_text())[
        "destination"] == "gs://elsewhere/0.1.0"
    # a retrained model is a changed file dependency
    assert ran(run_doit(project, "publish", "gcp.bucket=elsewhere", "pipelines.a.train.alpha=2")) == {
        "train:a", "publish"}
    prod = run_doit(project, "publish", "env=prod")
    assert "publish" in ran(prod)
    assert json.loads((project / "outputs" / "prod" / "publish" / "manifest.json").read_text())[
        "destination"] == "gs://xxx-prod-models/0.1.0"
