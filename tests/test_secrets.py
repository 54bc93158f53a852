"""Secret sentinel: a token read through ${oc.env:...} shows up in no output, log, state or cache."""

from __future__ import annotations

from pathlib import Path

from conftest import copy_project, run_doit

SENTINEL = "SENTINEL-1234"
STEPS = '''\
import os


def train(inputs, params, outputs):
    assert params["api_token"] == os.environ["MLOPS_TOKEN"]
    outputs["model"].write_text(inputs["features"].read_text() + str(len(params["api_token"])))


def failing(inputs, params, outputs):
    raise RuntimeError("failed on purpose, token length " + str(len(params["api_token"])))
'''


def test_the_sentinel_appears_nowhere(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    (project / "secret_steps.py").write_text(STEPS)
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text().replace('token: ${oc.env:MLOPS_TRACKING_TOKEN,""}',
                                                 "token: ${oc.env:MLOPS_TOKEN}"))
    pipeline = project / "conf" / "pipelines" / "pipeline_1.yaml"
    pipeline.write_text(pipeline.read_text().replace(
        "  fn: mlops.pipelines.demand.train_linear\n",
        "  fn: secret_steps.train\n  api_token: ${tracking.token}\n"))
    (project / "conf" / "pipelines" / "broken.yaml").write_text(
        "prepare: {fn: mlops.pipelines.demand.prepare, data: '${data}'}\n"
        "train: {fn: secret_steps.failing, api_token: '${tracking.token}'}\n")
    commands = [
        [], [], ["--continue"], ["why"], ["list", "--all", "--status"], ["print_config"], ["info", "train:pipeline_1"],
        ["pipelines.pipeline_1.train.alpah=1"], ["user=${oc.env:MLOPS_TOKEN}"], ["predict:pipeline_1", "--date", "x"],
        ["why", "env=prod"], ["env=prod", "train:pipeline_1"], ["clean", "train:pipeline_1"],
    ]
    printed = []
    for args in commands:
        result = run_doit(project, *args, env={"MLOPS_TOKEN": SENTINEL})
        printed.append(result.stdout + result.stderr)
    assert any("failed on purpose" in text for text in printed), "the failing step must have run"
    assert (project / "outputs" / "prod" / "pipeline_1" / "train" / "model.pkl").is_file()
    for args, text in zip(commands, printed, strict=True):
        assert SENTINEL not in text, args
    for path in project.rglob("*"):
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path
