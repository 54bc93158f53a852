"""Sweeps: Hydra's sweep grammar on the doit command line, one variant per combination, each a subtask with
its own folder; finished variants are up to date, unchanged upstream steps run once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import all_tasks, copy_project, doit, edit, ran, run_doit, tiny_project
from mlops.config import CommandLine, ConfigError
from mlops.config.sweeps import MAX_VARIANTS, split_sweeps

ALPHAS = "pipelines.a.train.alpha=0.1,0.3"


def variant_tasks(label: str) -> set[str]:
    """Return the tasks of pipeline a's variant `label` that a sweep of train's alpha makes."""
    return {f"{kind}:a@{label}" for kind in ("train", "evaluate", "predict")}


def test_each_value_is_a_variant_in_its_own_folder_and_finished_ones_stay_up_to_date(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project")
    others = all_tasks() - {"train:a", "evaluate:a", "predict:a"}
    assert doit(project, "-n", "2", ALPHAS) == others | variant_tasks("alpha_0.1") | variant_tasks("alpha_0.3")
    for alpha in ("0.1", "0.3"):
        model = (project / f"outputs/dev/a/alpha={alpha}/train/model.pkl").read_text()
        assert model.endswith(f"|alpha={alpha}|0") and model.startswith("RAW A")
        made = json.loads((project / f"outputs/dev/a/alpha={alpha}/train/provenance.json").read_text())
        assert made["variant"] == f"alpha={alpha}" and made["params"]["alpha"] == float(alpha)
    assert not (project / "outputs/dev/a/train").exists()  # the sweep replaces the step, not its own values
    assert doit(project, ALPHAS) == set()
    assert doit(project, "pipelines.a.train.alpha=0.1,0.3,1.0") == variant_tasks("alpha_1.0")
    assert doit(project, "train:a", "pipelines.a.train.alpha=0.3,2") == {"train:a@alpha_2"}
    # Without the sweep, the pipeline is as it was: its own step runs with its own values.
    assert doit(project, "train:a") == {"train:a"}


def test_a_cross_product_runs_each_upstream_step_once_per_value_it_depends_on(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    words = ("pipelines.a.train.alpha=range(1,3)", "pipelines.a.prepare.scale=choice(2,3)")
    made = doit(project, *words)
    assert {task for task in made if task.startswith("prepare")} == {"prepare:a@scale_2", "prepare:a@scale_3"}
    labels = ("alpha_1,scale_2", "alpha_1,scale_3", "alpha_2,scale_2", "alpha_2,scale_3")
    assert {task for task in made if task.startswith("train")} == {f"train:a@{label}" for label in labels}
    model = (project / "outputs/dev/a/alpha=2,scale=3/train/model.pkl").read_text()
    assert model == (project / "outputs/dev/a/scale=3/prepare/features.csv").read_text() + "|alpha=2|0"
    assert doit(project, *words) == set()


def test_why_graph_and_clean_know_the_variants(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    assert doit(project, ALPHAS)
    grown = "pipelines.a.train.alpha=0.1,0.3,0.5"
    why = run_doit(project, "why", "train:a", grown)
    assert why.stdout.splitlines() == ["train:a@alpha_0.5: no record of a successful run"]
    graph = run_doit(project, "graph", grown)
    assert "[a@alpha_0.5]" in graph.stdout and "[a@alpha_0.1]" in graph.stdout and "always runs" not in graph.stdout
    cleaned = run_doit(project, "clean", "train:a", ALPHAS)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (project / "outputs/dev/a/alpha=0.1/train/model.pkl").exists()
    assert (project / "outputs/dev/a/prepare/features.csv").exists()  # not the sweep's
    assert (project / "outputs/dev/a/alpha=0.1/evaluate/metrics.json").exists()  # not asked for


def test_the_table_of_variants_best_first_after_the_run_and_on_demand(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    words = "pipelines.pipeline_1.train.alpha=1,100"
    result = run_doit(project, "evaluate:pipeline_1", words)
    assert result.returncode == 0, result.stderr
    table = run_doit(project, "sweep", "pipelines.pipeline_1.train.alpha=1,100,10000")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "sweep of pipeline_1, 3 variants, best first by mae (lower is better):"
    assert lines[1].split() == ["variant", "mae", "holdout_hours", "mape_pct", "rmse"]
    assert [line.split()[0] for line in lines[2:]] == ["alpha=1", "alpha=100", "alpha=10000"]
    assert lines[4].split()[1:] == ["(no", "metrics", "yet)"]
    metrics = json.loads((project / "outputs/dev/pipeline_1/alpha=1/evaluate/metrics.json").read_text())
    assert lines[2].split()[1] == f"{metrics['mae']:.4g}"
    # The run's report ends with the table of its own variants.
    assert "\n  sweep of pipeline_1, 2 variants, best first by mae (lower is better):\n" in result.stderr
    assert ran(run_doit(project, "sweep", words)) == set()
    higher = run_doit(project, "sweep", words, "sweep.direction=maximize")
    assert [line.split()[0] for line in higher.stdout.splitlines()[2:]] == ["alpha=100", "alpha=1"]


def test_a_sweep_leaves_the_pipelines_own_steps_and_records_as_they_were(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    assert doit(project) == all_tasks(("a",))
    for words in ((ALPHAS,), ("pipelines.a.prepare.scale=2,3",)):
        assert doit(project, *words)
        assert run_doit(project, "why", "train:a").stdout == "train:a: up to date\n"
        assert doit(project) == set()


def test_nan_and_missing_metrics_rank_last_whatever_the_direction(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    edit(project / "tiny_steps.py", '''json.dumps({"length": len(inputs["model"].read_text())})''',
         '''json.dumps({"length": float("nan") if "alpha=3" in inputs["model"].read_text() else
                     len(inputs["model"].read_text())})''')
    assert doit(project, "pipelines.a.train.alpha=1,3,22")
    for direction, order in (("minimize", ["alpha=1", "alpha=22", "alpha=3", "alpha=99"]),
                             ("maximize", ["alpha=22", "alpha=1", "alpha=3", "alpha=99"])):
        table = run_doit(project, "sweep", "pipelines.a.train.alpha=1,3,22,99", "sweep.metric=length",
                         f"sweep.direction={direction}")
        assert [line.split()[0] for line in table.stdout.splitlines()[2:]] == order, table.stdout


@pytest.mark.parametrize(("words", "says"), [
    (["date=2026-02-02,2026-02-03"], "one date per command"),
    (["gcp.bucket=x,y"], "gcp.bucket: the sweep changes no step's config"),
    (["pipelines.a.train.alpha=interval(0,1)"], "interval(...) is a continuous range"),
    (["env=dev,prod"], "one env per command"),
    (["pipelines.a.train.api_token=x,y"], "a secret-looking key is not swept"),
    (["tracking.uri=http://u:pw1@h,http://u:pw2@h"], "a URL with a password is not swept"),
    (["pipelines.a.train.alpha=0.1,0.3", "sweep.direction=up"], "sweep.direction: 'up' is not a direction"),
])
def test_sweeps_that_cannot_run_are_one_line(tmp_path: Path, words: list[str], says: str) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    result = run_doit(project, *words)
    assert result.returncode != 0 and result.stderr.startswith("mlops: error: "), result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
    assert not (project / "outputs/dev/a").exists()


@pytest.mark.parametrize("words", [
    ["tracking.uri=http://u:pw1-sentinel@h,http://u:pw2-sentinel@h"],
    ["pipelines.a.train.alpha=0.1,0.3", "+data.source=choice(plain,'s3://me:pw1-sentinel@bucket/x')"],
    ["+pipelines.a.train.urls=[https://u:pw1-sentinel@h/a],[]"],
    ["+pipelines.a.train.remote={uri: 'ftp://:pw1-sentinel@h'},{}"],
])
def test_a_sweep_of_urls_with_passwords_is_refused_without_showing_them(words: list[str]) -> None:
    with pytest.raises(ConfigError, match=r": a URL with a password is not swept") as refused:
        split_sweeps(CommandLine(tuple(words)))
    assert "sentinel" not in str(refused.value)


@pytest.mark.parametrize(("word", "says"), [
    ("pipelines.a.train.alpha=range(0,1,0)", "range(...) with step 0 never ends"),
    ("pipelines.a.train.alpha=range(0,1.5,0)", "range(...) with step 0 never ends"),
    ("pipelines.a.train.alpha=range(0,100000000000)", f"more than {MAX_VARIANTS} values"),
    ("pipelines.a.train.alpha=range(0,1e12,1)", f"more than {MAX_VARIANTS} values"),
    ("pipelines.a.train.alpha=glob(*)", "glob(...) picks options of a config group"),
])
def test_a_sweep_with_values_that_cannot_be_listed_is_one_line_at_once(word: str, says: str) -> None:
    with pytest.raises(ConfigError, match=r"^pipelines\.a\.train\.alpha=.*: ") as refused:
        split_sweeps(CommandLine((word,)))
    assert says in str(refused.value)


PRESETS = "presets: {p1: 1, p2: 1, p3: 22, p4: 22}\nsel: p1\nmult: 1\n"


def test_variants_of_different_configs_never_share_a_name_and_each_row_is_its_own_model(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    (project / "conf/config.yaml").write_text((project / "conf/config.yaml").read_text() + PRESETS)
    edit(project / "conf/pipelines/a.yaml", "  alpha: 0.5\n", "  alpha: ${presets.${sel}}\n  mult: ${mult}\n")
    words = ("evaluate:a", "sel=p1,p2,p3,p4", "mult=1,2")
    result = run_doit(project, *words)
    assert result.returncode == 0, result.stderr
    trains = {task for task in ran(result) if task.startswith("train:")}
    assert len(trains) == 4  # (alpha 1 or 22) x (mult 1 or 2); p1 and p2 share, and so do p3 and p4
    for folder in (project / "outputs/dev/a").glob("*/train"):
        made = json.loads((folder / "provenance.json").read_text())
        values = dict(part.split("=") for part in folder.parent.name.split(","))
        assert made["params"]["alpha"] == {"p1": 1, "p2": 1, "p3": 22, "p4": 22}[values["sel"]], folder
    rows = [row for row in result.stderr.split("sweep of a, ")[1].splitlines()[2:] if row.strip()]
    lengths = {folder.parent.name: str(len(folder.joinpath("model.pkl").read_text()))
               for folder in (project / "outputs/dev/a").glob("*/train")}
    assert sorted(lengths) == ["sel=p1,mult=1", "sel=p1,mult=2", "sel=p3,mult=1", "sel=p3,mult=2"]
    assert {row.split()[0]: row.split()[1] for row in rows} == lengths  # each row shows its own model's metric
    assert doit(project, *words) == set()


def test_values_that_read_alike_as_folder_names_get_names_of_their_own(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    made = doit(project, "train:a", "pipelines.a.train.alpha=a/b,a_b,'a b'")
    assert len({task for task in made if task.startswith("train:")}) == 3
    models = sorted(path.read_text() for path in (project / "outputs/dev/a").glob("*/train/model.pkl"))
    assert [model.rpartition("|alpha=")[2] for model in models] == ["a b|0", "a/b|0", "a_b|0"]


def test_a_sweep_of_two_pipelines_shows_each_its_own_variants_and_a_narrowed_run_only_its_own(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project")
    both = ("pipelines.a.train.alpha=0.1,0.3", "pipelines.b.train.alpha=0.2,0.4")
    result = run_doit(project, *both)
    assert result.returncode == 0, result.stderr
    tables = {block.split(",")[0]: [row.split()[0] for row in block.splitlines()[2:] if row.strip()]
              for block in result.stderr.split("sweep of ")[1:]}
    assert tables == {"a": ["a.train.alpha=0.1", "a.train.alpha=0.3"], "b": ["b.train.alpha=0.2", "b.train.alpha=0.4"]}
    narrowed = run_doit(project, "evaluate:a", "pipelines.a.train.alpha=0.1,0.3,0.5", both[1])
    assert narrowed.returncode == 0 and "sweep of a, 3 variants" in narrowed.stderr
    assert "sweep of b" not in narrowed.stderr
