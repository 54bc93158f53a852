"""Config composition: the original example, each env patch of conf/, overrides, secrets, errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from helpers import REPO, copy_project, run_doit
from mlops.config import CommandLine, ConfigError, masked
from mlops.config.compose import compose

EXAMPLE = {
    "conf/config.yaml": """\
defaults:
  - _self_
  - env: dev
env: dev
user: ${oc.env:USER,runner}
version: ${pyproject:project.version}
gcp:
  project: xxx-${env}
train:
  mlflow:
    use: true
    tracking_uri: https://mlflow.${env}.xxx.com
  output_dir: trained_models
""",
    "conf/env/dev.yaml": "# @package _global_\n",
    "conf/env/prod.yaml": "# @package _global_\nenv: prod\n",
    "conf/env/sandbox.yaml": ("# @package _global_\ngcp:\n  project: xxx-sandbox-${user}\n"
                              "train:\n  mlflow:\n    use: false\n"),
    "conf/pipelines/pipeline_1.yaml": "param1: xxx\n",
    "conf/pipelines/pipeline_2.yaml": "",
    "pyproject.toml": '[project]\nname = "example"\nversion = "1.2.3"\n',
}


def write_example(root: Path) -> Path:
    for relative, text in EXAMPLE.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def example_expected(env: str, gcp_project: str, use: bool) -> dict:
    return {
        "env": env,
        "user": "ada",
        "version": "1.2.3",
        "gcp": {"project": gcp_project},
        "train": {"mlflow": {"use": use, "tracking_uri": f"https://mlflow.{env}.xxx.com"},
                  "output_dir": "trained_models"},
        "pipelines": {"pipeline_1": {"param1": "xxx"}, "pipeline_2": {}},
    }


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("USER", "ada")
    return write_example(tmp_path)


@pytest.mark.parametrize(("overrides", "expected"), [
    ([], example_expected("dev", "xxx-dev", True)),
    (["env=prod"], example_expected("prod", "xxx-prod", True)),
    (["env=sandbox"], example_expected("dev", "xxx-sandbox-ada", False)),
], ids=["dev", "prod", "sandbox"])
def test_original_example_composes_exactly(example: Path, overrides: list[str], expected: dict) -> None:
    assert compose(example, overrides).values == expected


def test_original_example_user_falls_back_to_runner(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USER")
    assert compose(example, ["env=sandbox"]).values["gcp"]["project"] == "xxx-sandbox-runner"


def test_print_config_works_on_the_original_example(tmp_path: Path) -> None:
    project = write_example(tmp_path / "example")
    (project / "dodo.py").write_text((REPO / "dodo.py").read_text())
    result = run_doit(project, "print_config", "env=sandbox", env={"USER": "ada"})
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == example_expected("dev", "xxx-sandbox-ada", False)
    listed = run_doit(project, "list", "--all")
    assert listed.returncode == 0 and "pipeline_1" not in listed.stdout


STEP_KINDS = {
    "prepare": {"doc": "Build each pipeline's features from its data.", "outputs": {"features": "features.csv"}},
    "train": {"doc": "Fit each pipeline's model on its training features.", "outputs": {"model": "model.pkl"},
              "needs": ["prepare"], "tracking": {"artifacts": ["model"]}},
    "evaluate": {"doc": "Score each pipeline's model on the holdout; write metrics as JSON.",
                 "outputs": {"metrics": "metrics.json"}, "needs": ["prepare", "train"],
                 "tracking": {"metrics": ["metrics"]}},
    "predict": {"doc": "Forecast one day (date=YYYY-MM-DD) with each pipeline's model; write a CSV.",
                "outputs": {"forecast": "forecast_{date}.csv"}, "needs": ["train"], "dated": True},
}

DEV = {
    "env": "dev",
    "version": "0.1.0",
    "user": "ada",
    "date": "2026-01-01",
    "data": {"start": "2024-01-01", "days": 730, "seed": 7, "holdout_days": 28},
    "gcp": {"project": "xxx-dev", "bucket": "xxx-dev-models"},
    "tracking": {"use": True, "uri": "sqlite:///outputs/dev/mlflow.db", "experiment": "demand-dev", "token": "",
                 "logger": True},
    "executor": "local",
    "dask": {"address": None, "workers": 2, "timeout": 10},
    "sweep": {"metric": "mae", "direction": "minimize"},
    "paths": {"root": "outputs"},
    "steps": STEP_KINDS,
    "pipelines": {
        "pipeline_1": {
            "prepare": {"fn": "mlops.pipelines.demand.prepare",
                        "data": {"start": "2024-01-01", "days": 730, "seed": 7, "holdout_days": 28}},
            "train": {"fn": "mlops.pipelines.demand.train_linear", "alpha": 1.0},
            "evaluate": {"fn": "mlops.pipelines.demand.evaluate"},
            "predict": {"fn": "mlops.pipelines.demand.predict", "seed": 7},
        },
        "pipeline_2": {
            "prepare": {"fn": "mlops.pipelines.demand.prepare",
                        "data": {"start": "2024-01-01", "days": 730, "seed": 7, "holdout_days": 28}},
            "train": {"fn": "mlops.pipelines.demand.train_boosted_trees", "max_iter": 200,
                      "learning_rate": 0.1, "max_leaf_nodes": 31, "random_state": 0},
            "evaluate": {"fn": "mlops.pipelines.demand.evaluate"},
            "predict": {"fn": "mlops.pipelines.demand.predict", "seed": 7},
        },
    },
}


@pytest.fixture
def repo_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("USER", "ada")
    monkeypatch.delenv("MLOPS_TRACKING_TOKEN", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = copy_project(tmp_path / "project", short_series=False, tracking=True)
    monkeypatch.chdir(project)
    return project


def test_dev_is_the_default_and_the_base_as_it_stands(repo_conf: Path) -> None:
    cfg = compose(repo_conf)
    assert cfg.env == "dev"
    assert cfg.values == DEV


def test_prod_patch_changes_only_env_and_what_interpolates_it(repo_conf: Path) -> None:
    expected = copy.deepcopy(DEV)
    expected["env"] = "prod"
    expected["gcp"] = {"project": "xxx-prod", "bucket": "xxx-prod-models"}
    expected["tracking"].update(uri="sqlite:///outputs/prod/mlflow.db", experiment="demand-prod")
    cfg = compose(repo_conf, ["env=prod"])
    assert cfg.env == "prod" and cfg.values == expected


def test_sandbox_patch_moves_the_project_and_turns_tracking_off(repo_conf: Path) -> None:
    expected = copy.deepcopy(DEV)
    expected["gcp"] = {"project": "xxx-sandbox-ada", "bucket": "xxx-sandbox-ada-models"}
    expected["tracking"]["use"] = False
    cfg = compose(repo_conf, ["env=sandbox"])
    assert cfg.env == "sandbox" and cfg.values == expected


def test_overrides_apply_in_order_with_hydra_semantics(repo_conf: Path) -> None:
    cfg = compose(repo_conf, [
        "data.seed=1", "data.seed=3",                      # the later one wins
        "pipelines.pipeline_1.train.alpha=0.3",
        "+pipelines.pipeline_1.train.fit_intercept=false",  # add a key
        "++gcp.region=eu",                                  # add or override
        "~tracking.token",                                  # delete
        "~pipelines.pipeline_2",                            # drop a pipeline for this run
    ])
    values = cfg.values
    assert values["data"]["seed"] == 3 and values["pipelines"]["pipeline_1"]["predict"]["seed"] == 3
    assert values["pipelines"]["pipeline_1"]["train"] == {
        "fn": "mlops.pipelines.demand.train_linear", "alpha": 0.3, "fit_intercept": False}
    assert values["gcp"]["region"] == "eu"
    assert "token" not in values["tracking"]
    assert list(values["pipelines"]) == ["pipeline_1"]


def test_pyproject_resolver_reads_poetry_versions_too(repo_conf: Path) -> None:
    (repo_conf / "pyproject.toml").write_text('[tool.poetry]\nname = "x"\nversion = "4.5.6"\n')
    cfg = compose(repo_conf, ["version=${pyproject:tool.poetry.version}"])
    assert cfg.values["version"] == "4.5.6"


def test_pyproject_resolver_names_a_missing_key(repo_conf: Path) -> None:
    (repo_conf / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    with pytest.raises(ConfigError, match=r"^version: .*pyproject.toml has no key 'project.version'"):
        compose(repo_conf)


def test_a_pipeline_can_come_from_the_command_line(repo_conf: Path) -> None:
    cfg = compose(repo_conf, ["+pipelines.pipeline_3.train.alpha=2"])
    assert cfg.pipelines["pipeline_3"] == {"train": {"alpha": 2}}


def test_secret_looking_keys_are_masked() -> None:
    shown = masked({"db_password": "p", "api_key": "k", "token": "", "keyboard": "qwerty",
                    "secrets": {"a": "1", "b": [2]}, "monkey": "banana", "auth": {"access_token": "t"}})
    assert shown == {"db_password": "********", "api_key": "********", "token": "", "keyboard": "qwerty",
                     "secrets": {"a": "********", "b": ["********"]}, "monkey": "banana",
                     "auth": {"access_token": "********"}}


def test_command_line_words_become_overrides_in_order() -> None:
    words = [("env", "prod"), ("~gcp.bucket", ""), ("+a.b", "1"), ("c", "x=y")]
    assert CommandLine.from_words(words).overrides == ("env=prod", "~gcp.bucket", "+a.b=1", "c=x=y")


def test_interpolations_on_the_command_line_are_refused_unless_allowed() -> None:
    words = CommandLine(("user=${oc.env:HOME}",))
    with pytest.raises(ConfigError, match=r"^user=\$\{oc.env:HOME\}: \$\{...\} on the command line is refused"):
        words.refuse_interpolations([])
    words.refuse_interpolations(["user"])


def test_no_eval_like_resolver_is_registered(repo_conf: Path) -> None:
    from omegaconf.basecontainer import BaseContainer

    compose(repo_conf)
    registered = set(BaseContainer._resolvers)
    assert registered <= {"oc.create", "oc.decode", "oc.deprecated", "oc.env", "oc.select", "oc.dict.keys",
                          "oc.dict.values", "pyproject", "hydra", "now", "python_version"}, registered
    assert not registered & {"eval", "python", "exec", "oc.eval"}
