"""Planning: step kinds from the config, per-pipeline steps, their inputs, outputs and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import copy_project
from mlops.config import ConfigError
from mlops.config.compose import compose
from mlops.doit_adapter.check import StepCheck
from mlops.doit_adapter.tasks import step_task
from mlops.plan import check_task_words, plan, step_kinds
from mlops.run.code import code_state
from mlops.run.executor import LocalExecutor
from mlops.state.digests import DigestCache

KINDS = ("prepare", "train", "evaluate", "predict")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path / "project", short_series=False)
    monkeypatch.chdir(root)
    return root


def test_each_step_kind_is_planned_once_per_pipeline_upstream_first(project: Path) -> None:
    steps = plan(compose(project))
    assert [s.task for s in steps] == [f"{k}:{p}" for k in KINDS for p in ("pipeline_1", "pipeline_2")]


def test_step_kinds_come_from_the_config_in_order(project: Path) -> None:
    kinds = step_kinds(compose(project).values)
    assert list(kinds) == list(KINDS)
    assert kinds["evaluate"].needs == ("prepare", "train") and kinds["predict"].dated
    assert kinds["predict"].files("2026-02-03") == {"forecast": "forecast_2026-02-03.csv"}


def test_a_kind_declared_in_config_is_planned_for_the_pipelines_that_have_it(project: Path) -> None:
    cfg = compose(project, ["+steps.explain.outputs.report=report.json", "+steps.explain.needs=[prepare,train]",
                            "+pipelines.pipeline_2.explain.fn=mlops.pipelines.demand.error_by_hour"])
    explain = [s for s in plan(cfg) if s.kind.name == "explain"]
    assert [s.task for s in explain] == ["explain:pipeline_2"]
    assert explain[0].inputs == {"features": "outputs/dev/pipeline_2/prepare/features.csv",
                                 "model": "outputs/dev/pipeline_2/train/model.pkl"}
    assert explain[0].kind.doc == "Run each pipeline's explain step."


@pytest.mark.parametrize(("override", "message"), [
    ("+steps.prepare.needs=[train]", "^steps.prepare.needs: must list step kinds declared before it, each once; "
                                    "choose from: none declared before it$"),
    ("steps.evaluate.needs=[prepare,train,train]", "^steps.evaluate.needs: must list step kinds declared before it, "
                                                    "each once"),
    ("+steps.report={outputs: {r: r.txt}, needs: [predict]}",
     "^steps.report.needs: 'predict' is dated \\(one output per date\\); a step kind cannot need a dated kind$"),
    (f"steps.train.outputs.model={'m' * 201}", "^steps.train.outputs.model: an output is a plain name"),
    ("~steps.train.outputs", "^steps.train.outputs: must map output names to file names"),
    ("+steps.train.dated=yes", "^steps.train.dated: must be true or false$"),
    ("steps.train.outputs.model=.hidden", "^steps.train.outputs.model: an output is a plain name"),
    ("steps.train.outputs.model='m_{day}.pkl'", r"^steps.train.outputs.model: an output is a plain name"),
    ("steps.train.outputs.model='m[1].pkl'", r"^steps.train.outputs.model: an output is a plain name"),
    ("steps.train.outputs.model='m*.pkl'", r"^steps.train.outputs.model: an output is a plain name"),
    ("+steps.train.outputs.copy=model.pkl", r"^steps.train.outputs.copy: 'model.pkl' is also the file of output"),
    ("steps.predict.outputs.forecast=forecast.csv", r"^steps.predict.outputs.forecast: 'forecast.csv': a dated step"),
])
def test_bad_step_kinds_are_refused(project: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        step_kinds(compose(project, [override]).values)


@pytest.mark.parametrize("node", ["[]", "[prepare, train]", "7"])
def test_steps_must_be_a_mapping(project: Path, node: str) -> None:
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text().split("\nsteps:\n")[0] + f"\nsteps: {node}\n")
    with pytest.raises(ConfigError, match=r"^steps: must map step kind names to their doc, outputs and needs$"):
        step_kinds(compose(project).values)


@pytest.mark.parametrize(("override", "message"), [
    ("+steps.train.outputs.features=extra.csv",
     r"^steps.train.outputs.features: evaluate also reads an output 'features' of another kind it needs"),
    ("+pipelines.pipeline_1.train.inputs.features=x.csv",
     r"^pipelines.pipeline_1.train.inputs.features \(in conf/pipelines/pipeline_1.yaml\): 'features' is already "
     r"the output of a step train needs"),
])
def test_an_input_name_is_never_given_twice(project: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(compose(project, [override]))


def test_subtask_wiring_of_evaluate(project: Path) -> None:
    steps = [s for s in plan(compose(project, ["env=prod"])) if s.kind.name == "evaluate"]
    task = step_task(steps[0], DigestCache(), LocalExecutor())
    base = "outputs/prod/pipeline_1"
    # The code is compared by the step's check, by meaning: not a doit file dependency.
    assert task["file_dep"] == [f"{base}/prepare/features.csv", f"{base}/train/model.pkl"]
    assert task["targets"] == [f"{base}/evaluate/metrics.json"]
    call = steps[0].call()
    assert call.fn == "mlops.pipelines.demand.evaluate" and call.params == {}
    assert call.inputs == {"features": f"{base}/prepare/features.csv", "model": f"{base}/train/model.pkl"}


def test_config_check_compares_only_what_the_step_read(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)  # steps run in the project folder: their code state is read from there
    read = {"made": {"": {"reads": {"values": {'["alpha"]': 1.0}, "keys": {},
                                    "runner": {"values": {'["fn"]': "mlops.pipelines.demand.train_linear"}}},
                          "code": code_state("mlops.pipelines.demand.train_linear", "outputs/dev")}}}

    def reasons(*overrides: str) -> list[str]:
        step = next(s for s in plan(compose(project, list(overrides))) if s.task == "train:pipeline_1")
        return StepCheck(step, DigestCache()).explain(read)

    assert reasons() == []
    assert reasons("pipelines.pipeline_2.train.max_iter=3", "gcp.project=other",
                   "+pipelines.pipeline_1.train.unread=1") == []
    assert reasons("pipelines.pipeline_1.train.alpha=2") == ["config pipelines.pipeline_1.train.alpha: 1.0 -> 2"]
    assert reasons("pipelines.pipeline_1.train.fn=mlops.pipelines.demand.train_boosted_trees")[0] == (
        'config pipelines.pipeline_1.train.fn: "mlops.pipelines.demand.train_linear" -> '
        '"mlops.pipelines.demand.train_boosted_trees"')
    first = plan(compose(project))[0]
    assert StepCheck(first, DigestCache()).explain({}) == ["no record of a successful run"]


def test_dated_step_targets_the_configured_date_and_offers_a_date_option(project: Path) -> None:
    steps = [s for s in plan(compose(project, ["date=2026-11-26"])) if s.kind.dated]
    task = step_task(steps[0], DigestCache(), LocalExecutor())
    assert task["targets"] == ["outputs/dev/pipeline_1/predict/forecast_2026-11-26.csv"]
    assert task["params"][0]["name"] == "date" and task["params"][0]["default"] == "2026-11-26"
    assert "params" not in step_task(plan(compose(project))[0], DigestCache(), LocalExecutor())


def test_a_step_without_its_upstream_section_is_an_error(project: Path) -> None:
    (project / "conf" / "pipelines" / "lonely.yaml").write_text("evaluate:\n  fn: mlops.pipelines.demand.evaluate\n")
    with pytest.raises(ConfigError, match=r"^pipelines.lonely.evaluate \(in conf/pipelines/lonely.yaml\): "
                                          r"evaluate needs the outputs of prepare; add a prepare section"):
        plan(compose(project))


def test_parameters_only_pipelines_have_no_steps(project: Path) -> None:
    (project / "conf" / "pipelines" / "notes.yaml").write_text("owner: ada\nthresholds: {mae: 30}\n")
    assert "notes" not in {s.pipeline for s in plan(compose(project))}


def test_unknown_task_words_are_named_with_choices(project: Path) -> None:
    steps = plan(compose(project))
    check_task_words(["train:pipeline_1", "other:x", "x=1", "train", "train:*", "train:pipe?ine_[12]"], KINDS, steps)
    with pytest.raises(ConfigError, match=r"^evaluate:pipeline_3: no such task; pipelines with an? evaluate step: "
                                          r"pipeline_1, pipeline_2$"):
        check_task_words(["evaluate:pipeline_3"], KINDS, steps)


def test_extra_inputs_become_file_dependencies(project: Path) -> None:
    (project / "calendar.csv").write_text("day\n")
    steps = plan(compose(project, ["+pipelines.pipeline_1.prepare.inputs.holidays=calendar.csv"]))
    prepare = next(s for s in steps if s.task == "prepare:pipeline_1")
    assert "calendar.csv" in step_task(prepare, DigestCache(), LocalExecutor())["file_dep"]
    assert prepare.call().inputs == {"holidays": "calendar.csv"}
