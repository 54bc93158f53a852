"""Task generation: step kinds, per-pipeline subtasks, their dependencies, targets and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import copy_project
from mlops import tasks
from mlops.config import ConfigError, compose
from mlops.hashing import DigestCache


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project", short_series=False)
    monkeypatch.chdir(root)
    return root


def subtasks(creator) -> dict[str, dict]:
    return {d["name"]: d for d in creator() if d.get("name")}


def test_each_step_kind_is_a_group_with_one_subtask_per_pipeline(project: Path) -> None:
    steps = tasks.plan(compose(project))
    assert [s.task for s in steps] == [f"{k}:{p}" for k in ("prepare", "train", "evaluate", "predict")
                                       for p in ("pipeline_1", "pipeline_2")]


def test_subtask_wiring_of_evaluate(project: Path) -> None:
    cfg = compose(project, ["env=prod"])
    steps = [s for s in tasks.plan(cfg) if s.kind.name == "evaluate"]
    task = subtasks(tasks._creator(tasks.STEP_KINDS["evaluate"], steps, DigestCache()))["pipeline_1"]
    base = "outputs/prod/pipeline_1"
    assert task["file_dep"][:2] == [f"{base}/prepare/features.csv", f"{base}/train/model.pkl"]
    assert task["file_dep"][2].endswith("mlops/pipelines/demand.py")
    assert task["targets"] == [f"{base}/evaluate/metrics.json"]
    call = task["actions"][0].__self__.step.call()
    assert call.fn == "mlops.pipelines.demand.evaluate" and call.params == {}
    assert call.inputs == {"features": f"{base}/prepare/features.csv", "model": f"{base}/train/model.pkl"}


def test_config_check_compares_only_what_the_step_read(project: Path) -> None:
    read = {"reads": {"values": {'["fn"]': "mlops.pipelines.demand.train_linear", '["alpha"]': 1.0},
                      "keys": {}}}

    def reasons(*overrides: str) -> list[str]:
        steps = [s for s in tasks.plan(compose(project, list(overrides))) if s.task == "train:pipeline_1"]
        return tasks.ReadsUnchanged(steps[0], DigestCache()).explain(read)

    assert reasons() == []
    assert reasons("pipelines.pipeline_2.train.max_iter=3", "gcp.project=other",
                   "+pipelines.pipeline_1.train.unread=1") == []
    assert reasons("pipelines.pipeline_1.train.alpha=2") == [
        "config pipelines.pipeline_1.train.alpha: 1.0 -> 2"]
    assert reasons("pipelines.pipeline_1.train.fn=mlops.pipelines.demand.train_boosted_trees") == [
        'config pipelines.pipeline_1.train.fn: "mlops.pipelines.demand.train_linear" -> '
        '"mlops.pipelines.demand.train_boosted_trees"']
    first = tasks.plan(compose(project))[0]
    assert tasks.ReadsUnchanged(first, DigestCache()).explain({}) == ["no record of a successful run"]


def test_dated_step_targets_the_configured_date_and_offers_a_date_option(project: Path) -> None:
    steps = [s for s in tasks.plan(compose(project, ["date=2026-11-26"])) if s.kind.dated]
    task = tasks.dated_task(steps[0], DigestCache())
    assert task["targets"] == ["outputs/dev/pipeline_1/predict/forecast_2026-11-26.csv"]
    assert task["params"][0]["name"] == "date" and task["params"][0]["default"] == "2026-11-26"


def test_declaring_a_step_kind_adds_a_task_group(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "STEP_KINDS", dict(tasks.STEP_KINDS))
    tasks.step_kind("explain", "Explain each pipeline's model.", outputs={"report": "report.json"},
                    needs=("prepare", "train"))
    (project / "conf" / "pipelines" / "pipeline_1.yaml").write_text(
        (project / "conf" / "pipelines" / "pipeline_1.yaml").read_text()
        + "explain:\n  fn: mlops.pipelines.demand.evaluate\n")
    namespace = tasks.dodo(project)
    assert "task_explain" in namespace and namespace["task_explain"].__doc__ == "Explain each pipeline's model."
    assert "explain" in namespace["DOIT_CONFIG"]["default_tasks"]
    assert list(subtasks(namespace["task_explain"])) == ["pipeline_1"]


def test_a_step_kind_must_come_after_what_it_needs() -> None:
    with pytest.raises(ValueError, match="needs 'report'"):
        tasks.step_kind("publish", "Publish.", outputs={"x": "x"}, needs=("report",))


def test_a_step_without_its_upstream_section_is_an_error(project: Path) -> None:
    path = project / "conf" / "pipelines" / "lonely.yaml"
    path.write_text("evaluate:\n  fn: mlops.pipelines.demand.evaluate\n")
    with pytest.raises(ConfigError, match=r"^pipelines.lonely.evaluate \(in conf/pipelines/lonely.yaml\): "
                                          r"evaluate needs the outputs of prepare; add a prepare section"):
        tasks.plan(compose(project))


def test_parameters_only_pipelines_have_no_steps(project: Path) -> None:
    (project / "conf" / "pipelines" / "notes.yaml").write_text("owner: ada\nthresholds: {mae: 30}\n")
    assert "notes" not in {s.pipeline for s in tasks.plan(compose(project))}


def test_unknown_task_words_are_named_with_choices(project: Path) -> None:
    steps = tasks.plan(compose(project))
    tasks.check_task_names(["-n", "2", "train:pipeline_1", "other:x", "x=1"], steps)
    with pytest.raises(ConfigError, match="^evaluate:pipeline_3: no such task; pipelines with an? evaluate step: "
                                          "pipeline_1, pipeline_2$"):
        tasks.check_task_names(["evaluate:pipeline_3"], steps)


def test_extra_inputs_become_file_dependencies(project: Path) -> None:
    (project / "calendar.csv").write_text("day\n")
    steps = tasks.plan(compose(project, ["+pipelines.pipeline_1.prepare.inputs.holidays=calendar.csv"]))
    prepare = tasks.step_task(next(s for s in steps if s.task == "prepare:pipeline_1"), DigestCache())
    assert "calendar.csv" in prepare["file_dep"]
    action = prepare["actions"][0].__self__
    assert isinstance(action, tasks.StepAction) and action.step.call().inputs == {"holidays": "calendar.csv"}
