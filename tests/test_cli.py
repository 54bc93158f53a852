"""End-to-end: the real doit command in a subprocess, on a copy of the project."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from conftest import run_doit, task_marks

STEPS = ("prepare", "train", "evaluate", "predict")
ALL_TASKS = {f"{step}:{pipeline}" for step in STEPS for pipeline in ("pipeline_1", "pipeline_2")}


def ran(result) -> set[str]:
    return {name for name, mark in task_marks(result.stdout).items() if mark == "."}


def skipped(result) -> set[str]:
    return {name for name, mark in task_marks(result.stdout).items() if mark == "--"}


def test_first_run_builds_every_output_and_rerun_skips_everything(project: Path) -> None:
    first = run_doit(project)
    assert first.returncode == 0, first.stderr
    assert ran(first) == ALL_TASKS
    out = project / "outputs" / "dev"
    for pipeline in ("pipeline_1", "pipeline_2"):
        metrics = json.loads((out / pipeline / "evaluate" / "metrics.json").read_text())
        assert set(metrics) == {"mae", "rmse", "mape_pct", "holdout_hours"}
        assert metrics["holdout_hours"] == 7 * 24
        assert 0 < metrics["mae"] <= metrics["rmse"]
        forecast = (out / pipeline / "predict" / "forecast_2026-01-01.csv").read_text().splitlines()
        assert forecast[0] == "timestamp,temperature_c,forecast_mw" and len(forecast) == 25
    assert not list(out.rglob(".staging-*")), "staging folders must not outlive a step"

    again = run_doit(project)
    assert again.returncode == 0, again.stderr
    assert ran(again) == set() and skipped(again) == ALL_TASKS


def test_param_change_reruns_only_that_pipelines_train_and_downstream(project: Path) -> None:
    assert run_doit(project).returncode == 0
    changed = run_doit(project, "pipelines.pipeline_1.train.alpha=0.3")
    assert changed.returncode == 0, changed.stderr
    assert ran(changed) == {"train:pipeline_1", "evaluate:pipeline_1", "predict:pipeline_1"}
    assert skipped(changed) == ALL_TASKS - ran(changed)


def test_shared_key_change_reruns_the_steps_that_interpolate_it(project: Path) -> None:
    assert run_doit(project).returncode == 0
    changed = run_doit(project, "data.seed=8")
    # prepare reads ${data} and predict reads ${data.seed}; train and evaluate follow prepare's output.
    assert ran(changed) == ALL_TASKS


def test_running_one_step_runs_its_stale_upstream_and_nothing_else(project: Path) -> None:
    result = run_doit(project, "train:pipeline_2")
    assert result.returncode == 0, result.stderr
    assert ran(result) == {"prepare:pipeline_2", "train:pipeline_2"}
    assert not (project / "outputs" / "dev" / "pipeline_1").exists()


def test_env_switch_keeps_each_envs_outputs_and_state(project: Path) -> None:
    assert ran(run_doit(project)) == ALL_TASKS
    prod = run_doit(project, "env=prod")
    assert prod.returncode == 0 and ran(prod) == ALL_TASKS
    assert (project / "outputs" / "prod" / "pipeline_1" / "train" / "model.pkl").is_file()
    back = run_doit(project)
    assert ran(back) == set() and skipped(back) == ALL_TASKS
    assert ran(run_doit(project, "env=prod")) == set()


def test_date_value_writes_its_own_forecast_and_earlier_dates_stay_up_to_date(project: Path) -> None:
    assert run_doit(project).returncode == 0
    folder = project / "outputs" / "dev" / "pipeline_1" / "predict"
    first = run_doit(project, "predict:pipeline_1", "date=2026-11-26")
    assert first.returncode == 0, first.stderr
    assert ran(first) == {"predict:pipeline_1"}
    assert sorted(p.name for p in folder.iterdir()) == ["forecast_2026-01-01.csv", "forecast_2026-11-26.csv"]
    assert ran(run_doit(project, "predict:pipeline_1", "date=2026-11-26")) == set()
    assert ran(run_doit(project, "predict:pipeline_1")) == set()
    day = (folder / "forecast_2026-11-26.csv").read_text().splitlines()
    assert day[1].startswith("2026-11-26 00:00:00,") and day[-1].startswith("2026-11-26 23:00:00,")


def test_date_task_option_works_like_the_date_value(project: Path) -> None:
    option = run_doit(project, "predict:pipeline_1", "--date", "2026-11-27")
    assert option.returncode == 0, option.stderr
    assert ran(option) == {"prepare:pipeline_1", "train:pipeline_1", "predict:pipeline_1"}
    folder = project / "outputs" / "dev" / "pipeline_1" / "predict"
    assert [p.name for p in folder.iterdir()] == ["forecast_2026-11-27.csv"]
    assert ran(run_doit(project, "predict:pipeline_1", "--date", "2026-11-27")) == set()
    # The config's own date has not been forecast yet.
    assert ran(run_doit(project, "predict:pipeline_1")) == {"predict:pipeline_1"}


def test_retrained_model_makes_older_dates_stale(project: Path) -> None:
    assert run_doit(project, "predict:pipeline_1", "date=2026-03-01").returncode == 0
    assert run_doit(project, "pipelines.pipeline_1.train.alpha=5", "predict:pipeline_1").returncode == 0
    again = run_doit(project, "pipelines.pipeline_1.train.alpha=5", "predict:pipeline_1", "date=2026-03-01")
    assert ran(again) == {"predict:pipeline_1"}


def test_date_option_is_documented_by_doit_help(project: Path) -> None:
    result = run_doit(project, "help", "predict:pipeline_1")
    assert result.returncode == 0
    assert "--date=ARG" in result.stdout and "2026-01-01" in result.stdout


def test_bad_date_option_fails_the_task_and_writes_nothing(project: Path) -> None:
    result = run_doit(project, "predict:pipeline_1", "--date", "2026-13-01")
    assert result.returncode != 0
    assert "'2026-13-01' is not a date" in result.stdout + result.stderr
    assert not list((project / "outputs" / "dev" / "pipeline_1" / "predict").glob("*.csv"))


def test_list_shows_step_groups_with_docs_and_all_subtasks(project: Path) -> None:
    groups = run_doit(project, "list")
    assert groups.returncode == 0
    names = [line.split()[0] for line in groups.stdout.splitlines()]
    assert names == ["evaluate", "predict", "prepare", "print_config", "train"]
    assert "Fit each pipeline's model on its training features." in groups.stdout
    subtasks = run_doit(project, "list", "--all")
    listed = {line.split()[0] for line in subtasks.stdout.splitlines()}
    assert ALL_TASKS <= listed


def test_a_new_pipeline_file_is_a_new_pipeline(project: Path) -> None:
    source = (project / "conf" / "pipelines" / "pipeline_1.yaml").read_text()
    (project / "conf" / "pipelines" / "pipeline_3.yaml").write_text(source.replace("alpha: 1.0", "alpha: 9.0"))
    listed = run_doit(project, "list", "--all").stdout
    assert "train:pipeline_3" in listed
    result = run_doit(project, "evaluate:pipeline_3")
    assert result.returncode == 0, result.stderr
    assert (project / "outputs" / "dev" / "pipeline_3" / "evaluate" / "metrics.json").is_file()


def test_print_config_prints_resolved_yaml_with_secrets_masked(project: Path) -> None:
    result = run_doit(project, "print_config", "env=sandbox", env={"USER": "ada", "MLOPS_TRACKING_TOKEN": "s3cr3t-value"})
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["gcp"]["project"] == "xxx-sandbox-ada"
    assert printed["env"] == "dev" and printed["tracking"]["use"] is False
    assert printed["tracking"]["token"] == "********"
    assert "s3cr3t-value" not in result.stdout + result.stderr
    assert printed["pipelines"]["pipeline_1"]["train"]["alpha"] == 1.0
    assert not (project / "outputs" / "sandbox" / "pipeline_1").exists()


def test_overrides_follow_hydra_grammar_in_order(project: Path) -> None:
    result = run_doit(project, "print_config", "+extra.flag=1", "~gcp.bucket=", "pipelines.pipeline_2.train.max_iter=5",
                      "++data.seed=11")
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["extra"] == {"flag": 1}
    assert "bucket" not in printed["gcp"]
    assert printed["pipelines"]["pipeline_2"]["train"]["max_iter"] == 5
    assert printed["data"]["seed"] == 11 and printed["pipelines"]["pipeline_1"]["predict"]["seed"] == 11
