"""End-to-end: the installed doit command in a subprocess, on a copy of the project with tiny steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from helpers import all_tasks, ran, run_doit, skipped

ALL = all_tasks()


def test_first_run_builds_every_output_and_rerun_skips_everything(project: Path) -> None:
    first = run_doit(project)
    assert first.returncode == 0, first.stderr
    assert ran(first) == ALL
    out = project / "outputs" / "dev"
    assert (out / "a" / "train" / "model.pkl").read_text() == "RAW A\nx2|alpha=0.5|0"
    assert json.loads((out / "b" / "evaluate" / "metrics.json").read_text()) == {"length": len("RAW B\nx2|alpha=0.5|0")}
    assert (out / "a" / "predict" / "forecast_2026-01-01.csv").read_text().startswith("2026-01-01:RAW A")
    assert not list(out.rglob(".staging-*")), "staged files must not outlive a step"
    again = run_doit(project)
    assert again.returncode == 0, again.stderr
    assert ran(again) == set() and skipped(again) == ALL


def test_param_change_reruns_only_that_pipelines_train_and_downstream(ran_project: Path) -> None:
    project = ran_project
    changed = run_doit(project, "pipelines.a.train.alpha=0.3")
    assert changed.returncode == 0, changed.stderr
    assert ran(changed) == {"train:a", "evaluate:a", "predict:a"}
    assert skipped(changed) == ALL - ran(changed)


def test_shared_key_change_reruns_the_steps_that_interpolate_it(project: Path) -> None:
    pipeline = project / "conf" / "pipelines" / "a.yaml"
    pipeline.write_text(pipeline.read_text().replace("scale: 2", "scale: ${data.seed}"))
    assert run_doit(project).returncode == 0
    assert ran(run_doit(project, "data.seed=8")) == {"prepare:a", "train:a", "evaluate:a", "predict:a"}


def test_running_one_step_runs_its_stale_upstream_and_nothing_else(project: Path) -> None:
    result = run_doit(project, "train:b")
    assert result.returncode == 0, result.stderr
    assert ran(result) == {"prepare:b", "train:b"}
    assert not (project / "outputs" / "dev" / "a").exists()


def test_env_switch_keeps_each_envs_outputs_and_state(ran_project: Path) -> None:
    project = ran_project
    prod = run_doit(project, "env=prod")
    assert prod.returncode == 0 and ran(prod) == ALL
    assert (project / "outputs" / "prod" / "a" / "train" / "model.pkl").is_file()
    back = run_doit(project)
    assert ran(back) == set() and skipped(back) == ALL
    assert ran(run_doit(project, "env=prod")) == set()


def test_date_value_writes_its_own_output_and_earlier_dates_stay_up_to_date(ran_project: Path) -> None:
    project = ran_project
    folder = project / "outputs" / "dev" / "a" / "predict"
    first = run_doit(project, "predict:a", "date=2026-11-26")
    assert first.returncode == 0, first.stderr
    assert ran(first) == {"predict:a"}
    assert sorted(p.name for p in folder.glob("forecast_*")) == ["forecast_2026-01-01.csv", "forecast_2026-11-26.csv"]
    assert ran(run_doit(project, "predict:a", "date=2026-11-26")) == set()
    assert ran(run_doit(project, "predict:a")) == set()
    assert (folder / "forecast_2026-11-26.csv").read_text().startswith("2026-11-26:")


def test_date_task_option_works_like_the_date_value(project: Path) -> None:
    option = run_doit(project, "predict:a", "--date", "2026-11-27")
    assert option.returncode == 0, option.stderr
    assert ran(option) == {"prepare:a", "train:a", "predict:a"}
    folder = project / "outputs" / "dev" / "a" / "predict"
    assert [p.name for p in folder.glob("forecast_*")] == ["forecast_2026-11-27.csv"]
    assert ran(run_doit(project, "predict:a", "--date", "2026-11-27")) == set()
    assert ran(run_doit(project, "predict:a")) == {"predict:a"}  # the config's own date is not made yet


def test_retrained_model_makes_older_dates_stale(project: Path) -> None:
    assert run_doit(project, "predict:a", "date=2026-03-01").returncode == 0
    assert run_doit(project, "pipelines.a.train.alpha=5", "predict:a").returncode == 0
    again = run_doit(project, "pipelines.a.train.alpha=5", "predict:a", "date=2026-03-01")
    assert ran(again) == {"predict:a"}


def test_date_option_is_documented_by_doit_help(project: Path) -> None:
    result = run_doit(project, "help", "predict:a")
    assert result.returncode == 0
    assert "--date=ARG" in result.stdout and "2026-01-01" in result.stdout


def test_bad_date_option_fails_the_task_and_writes_nothing(project: Path) -> None:
    result = run_doit(project, "predict:a", "--date", "2026-13-01")
    assert result.returncode != 0
    assert "'2026-13-01' is not a date" in result.stdout + result.stderr
    assert not list((project / "outputs" / "dev" / "a" / "predict").glob("forecast*"))


def test_list_shows_step_groups_with_docs_and_all_subtasks(project: Path) -> None:
    groups = run_doit(project, "list")
    assert groups.returncode == 0
    names = [line.split()[0] for line in groups.stdout.splitlines()]
    assert names == ["evaluate", "predict", "prepare", "print_config", "publish", "train"]
    assert "Fit each pipeline's model on its training features." in groups.stdout
    subtasks = run_doit(project, "list", "--all")
    assert {line.split()[0] for line in subtasks.stdout.splitlines()} >= ALL


def test_a_new_pipeline_file_is_a_new_pipeline(project: Path) -> None:
    source = (project / "conf" / "pipelines" / "a.yaml").read_text()
    (project / "conf" / "pipelines" / "c.yaml").write_text(source.replace("alpha: 0.5", "alpha: 9.0"))
    assert "train:c" in run_doit(project, "list", "--all").stdout
    result = run_doit(project, "evaluate:c")
    assert result.returncode == 0, result.stderr
    assert "alpha=9.0" in (project / "outputs" / "dev" / "c" / "train" / "model.pkl").read_text()


def test_print_config_prints_resolved_yaml_with_secrets_masked(project: Path) -> None:
    result = run_doit(project, "print_config", "env=sandbox", env={"USER": "ada", "MLOPS_TRACKING_TOKEN": "s3cr3t"})
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["gcp"]["project"] == "xxx-sandbox-ada"
    assert printed["env"] == "dev" and printed["tracking"]["use"] is False
    assert printed["tracking"]["token"] == "********"
    assert "s3cr3t" not in result.stdout + result.stderr
    assert printed["pipelines"]["a"]["train"]["alpha"] == 0.5
    assert not (project / "outputs" / "sandbox" / "a").exists()


def test_overrides_follow_hydra_grammar_in_order(project: Path) -> None:
    result = run_doit(project, "print_config", "+extra.flag=1", "~gcp.bucket=", "pipelines.b.train.alpha=5",
                      "++data.seed=11")
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["extra"] == {"flag": 1}
    assert "bucket" not in printed["gcp"]
    assert printed["pipelines"]["b"]["train"]["alpha"] == 5
    assert printed["data"]["seed"] == 11


@pytest.mark.parametrize("mode", [["-n", "2"], ["-n", "2", "-P", "thread"]], ids=["processes", "threads"])
def test_forced_parallel_runs_run_every_step_and_adopt_nothing(ran_project: Path, mode: list[str]) -> None:
    model = ran_project / "outputs" / "dev" / "a" / "train" / "model.pkl"
    before = model.stat().st_mtime_ns
    forced = run_doit(ran_project, *mode, "-a")
    assert forced.returncode == 0, forced.stderr
    assert ran(forced) == ALL
    assert "made by another run" not in forced.stderr
    assert model.stat().st_mtime_ns != before  # made again, not adopted
    assert ran(run_doit(ran_project)) == set()
