"""Precise re-runs, end to end: a step reruns when, and only when, something it used changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import all_tasks, doit, edit, ran, run_doit, tiny_project

TASKS = all_tasks()


@pytest.fixture
def project(ran_project: Path) -> Path:
    """Two tiny pipelines, run once and all up to date (in another folder: paths in the state are relative)."""
    return ran_project


def test_a_project_moved_to_another_folder_stays_up_to_date(project: Path) -> None:
    again = run_doit(project)
    assert again.returncode == 0, again.stderr
    assert ran(again) == set() and len(again.stdout.splitlines()) == len(TASKS)




def test_unrelated_changes_rerun_nothing(project: Path) -> None:
    assert doit(project, "+new_top_key=1") == set()
    assert doit(project, "pipelines.a.train.unused=2") == set()          # in the section, never read
    assert doit(project, "+pipelines.a.evaluate.note=x") == set()        # evaluate reads no parameter
    assert doit(project, "gcp.project=elsewhere", "data.days=5") == set()  # not interpolated here


def test_a_read_value_reruns_that_step_and_what_its_output_changes(project: Path) -> None:
    assert doit(project, "pipelines.a.train.alpha=0.7") == {"train:a", "evaluate:a", "predict:a"}
    assert doit(project, "pipelines.a.prepare.scale=3") == {"prepare:a", "train:a", "evaluate:a", "predict:a"}
    assert doit(project) == {"prepare:a", "train:a", "evaluate:a", "predict:a"}


def test_yaml_formatting_and_key_order_do_not_matter(project: Path) -> None:
    (project / "conf" / "pipelines" / "a.yaml").write_text(
        "predict: {fn: tiny_steps.predict}\n"
        "evaluate: {fn: tiny_steps.evaluate}\n"
        "train: {unused: 1, api_token: '${oc.env:MLOPS_TEST_TOKEN,\"\"}', alpha: 5.0e-1, fn: tiny_steps.train}\n"
        "prepare:\n  scale: 2\n  inputs: {raw: data/a.txt}\n  fn: tiny_steps.prepare  # reordered\n")
    assert doit(project) == set()


def test_touched_inputs_rerun_nothing_and_changed_inputs_rerun_their_pipeline(project: Path) -> None:
    raw = project / "data" / "a.txt"
    stat = raw.stat()
    os.utime(raw, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    assert doit(project) == set()
    assert doit(project) == set()
    raw.write_text("raw z\n")
    assert doit(project) == {"prepare:a", "train:a", "evaluate:a", "predict:a"}


def test_step_code_change_reruns_the_steps_it_implements(project: Path) -> None:
    edit(project / "tiny_steps.py", 'f"x{params', 'f"y{params')
    why = run_doit(project, "why", "prepare:a")
    assert why.stdout == "prepare:a: code changed: tiny_steps.py\n"
    assert doit(project) == TASKS


def test_missing_output_reruns_the_step(project: Path) -> None:
    (project / "outputs" / "dev" / "b" / "evaluate" / "metrics.json").unlink()
    assert run_doit(project, "why").stdout == "evaluate:b: missing output: outputs/dev/b/evaluate/metrics.json\n"
    assert doit(project) == {"evaluate:b"}


def test_why_names_the_changed_key_with_old_and_new_values(project: Path) -> None:
    result = run_doit(project, "why", "pipelines.a.train.alpha=0.7", "pipelines.b.prepare.scale=4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "prepare:b: config pipelines.b.prepare.scale: 2 -> 4",
        "train:a: config pipelines.a.train.alpha: 0.5 -> 0.7",
        "train:b: upstream prepare:b will run first; this runs if its output changes",
        "evaluate:a: upstream train:a will run first; this runs if its output changes",
        "evaluate:b: upstream prepare:b will run first; this runs if its output changes",
        "evaluate:b: upstream train:b will run first; this runs if its output changes",
        "predict:a: upstream train:a will run first; this runs if its output changes",
        "predict:b: upstream train:b will run first; this runs if its output changes",
    ]
    assert run_doit(project, "why", "train:a").stdout == "train:a: up to date\n"


def test_why_masks_secret_values(project: Path) -> None:
    result = run_doit(project, "why", "train", env={"MLOPS_TEST_TOKEN": "SENTINEL-1234"})
    assert result.stdout.splitlines() == [
        'train:a: config pipelines.a.train.api_token: "" -> "********"',
        'train:b: config pipelines.b.train.api_token: "" -> "********"',
    ]
    assert "SENTINEL" not in result.stdout + result.stderr


def test_list_status_agrees(project: Path) -> None:
    status = run_doit(project, "list", "--all", "--status", "pipelines.a.train.alpha=1")
    marks = dict(line.split()[:2][::-1] for line in status.stdout.splitlines())
    assert marks["train:a"] == "R" and marks["train:b"] == "U" and marks["prepare:a"] == "U"


def test_each_date_keeps_the_values_it_was_made_with(project: Path) -> None:
    assert doit(project, "predict:a", "date=2026-02-01") == {"predict:a"}
    assert doit(project, "predict:a", "pipelines.a.train.unused=7", "date=2026-02-01") == set()
    assert doit(project, "predict:a", "pipelines.a.train.alpha=0.9") == {"train:a", "predict:a"}
    why = run_doit(project, "why", "predict:a", "pipelines.a.train.alpha=0.9", "date=2026-02-01").stdout
    assert why == "predict:a: input changed since 2026-02-01 was made: outputs/dev/a/train/model.pkl\n"
    assert run_doit(project, "why", "predict:a", "pipelines.a.train.alpha=0.9", "--date", "2026-02-01").stdout == why
    assert run_doit(project, "why", "predict:a", "--date=2026-02-02").stdout == (
        "predict:a: nothing made for 2026-02-02 yet\n")
    bad = run_doit(project, "why", "predict:a", "--date", "2026-02-30")
    assert bad.returncode != 0 and bad.stderr.strip().splitlines() == [
        "mlops: error: --date: '2026-02-30' is not a date; write --date=YYYY-MM-DD"]


SHAPE_STEPS = '''\
import json
from collections.abc import Mapping


def prepare(inputs, params, outputs):
    kind = "mapping" if isinstance(params["opt"], Mapping) else "other"
    outputs["features"].write_text(f"{kind} {params['alpha']!r} {params['w'][1]}")


def train(inputs, params, outputs):
    whole = params.to_dict()
    outputs["model"].write_text(json.dumps(whole, sort_keys=True) + f" {len(params)} {params.get('fn')} {params}")
'''

SHAPE_PIPELINE = '''\
prepare:
  fn: shape_steps.prepare
  opt: {depth: 3}
  alpha: 1
  w: {1: 0.5}
train:
  fn: shape_steps.train
  nan: .nan
  opt: {depth: 3}
'''


@pytest.fixture
def shaped(project: Path) -> Path:
    """A pipeline `s` whose steps ask what a value is, read integer keys, list keys and print sections."""
    (project / "shape_steps.py").write_text(SHAPE_STEPS)
    (project / "conf" / "pipelines" / "s.yaml").write_text(SHAPE_PIPELINE)
    assert doit(project, "train:s") == {"prepare:s", "train:s"}
    return project


def test_listing_printing_and_nan_rerun_nothing_on_a_no_op(shaped: Path) -> None:
    assert doit(shaped, "train:s") == set()
    assert run_doit(shaped, "why", "train:s").stdout == "train:s: up to date\n"


def test_a_value_of_another_type_reruns(shaped: Path) -> None:
    features = shaped / "outputs" / "dev" / "s" / "prepare" / "features.csv"
    assert doit(shaped, "prepare:s", "pipelines.s.prepare.alpha=1.0") == {"prepare:s"}
    assert features.read_text() == "mapping 1.0 0.5"
    assert doit(shaped, "prepare:s", "pipelines.s.prepare.alpha=true") == {"prepare:s"}
    assert features.read_text() == "mapping True 0.5"
    assert doit(shaped, "prepare:s", "pipelines.s.prepare.alpha=true") == set()


def test_what_a_section_is_counts_and_integer_keys_are_read(shaped: Path) -> None:
    assert doit(shaped, "prepare:s", "pipelines.s.prepare.opt.depth=4") == set()  # read only as a mapping
    assert doit(shaped, "prepare:s", "pipelines.s.prepare.opt=null") == {"prepare:s"}
    edit(shaped / "conf" / "pipelines" / "s.yaml", "w: {1: 0.5}", "w: {1: 0.7}")
    assert doit(shaped, "prepare:s", "pipelines.s.prepare.opt=null") == {"prepare:s"}
    assert doit(shaped, "prepare:s", "pipelines.s.prepare.opt=null") == set()


WEIGHTED = '''
def train(inputs, params, outputs):
    outputs["model"].write_text(f"{1 in params['class_weight']} {'1' in params['class_weight']}")
'''


def test_an_integer_key_asked_for_is_that_key_next_time_too(project: Path) -> None:
    (project / "weighted.py").write_text(WEIGHTED)
    pipeline = project / "conf" / "pipelines" / "a.yaml"
    edit(pipeline, "  fn: tiny_steps.train\n", "  fn: weighted.train\n  class_weight: {0: 1.0, 1: 5.0}\n")
    model = project / "outputs" / "dev" / "a" / "train" / "model.pkl"
    assert doit(project, "train:a") == {"train:a"}
    assert model.read_text() == "True False"
    assert doit(project, "train:a") == set()  # the same key, the same answer: nothing reruns for nothing
    edit(pipeline, "class_weight: {0: 1.0, 1: 5.0}", "class_weight: {0: 1.0}")
    assert doit(project, "train:a") == {"train:a"}  # `1 in ...` is False now
    assert model.read_text() == "False False"
    edit(pipeline, "class_weight: {0: 1.0}", "class_weight: {0: 1.0, '1': 5.0}")
    assert doit(project, "train:a") == {"train:a"}
    assert model.read_text() == "False True"
    assert doit(project, "train:a") == set()


def test_a_printed_section_reruns_on_any_change_inside(shaped: Path) -> None:
    assert doit(shaped, "train:s", "pipelines.s.train.opt.depth=4") == {"train:s"}


def test_an_input_replaced_with_the_same_size_and_mtime_reruns_its_steps(project: Path) -> None:
    raw, other = project / "data" / "a.txt", project / "data" / "new.txt"
    stat = raw.stat()
    other.write_text("raw z\n")
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, raw)
    assert raw.stat().st_size == stat.st_size and raw.stat().st_mtime_ns == stat.st_mtime_ns
    assert doit(project) == {"prepare:a", "train:a", "evaluate:a", "predict:a"}
    assert doit(project) == set()


def test_why_says_one_true_line_for_steps_never_made(tmp_path: Path) -> None:
    fresh = tiny_project(tmp_path / "fresh")
    why = run_doit(fresh, "why")
    assert why.returncode == 0, why.stderr
    undated = [f"{step}:{name}: no record of a successful run" for step in ("prepare", "train", "evaluate")
               for name in ("a", "b")]
    assert why.stdout.splitlines() == [*undated, "predict:a: nothing made for 2026-01-01 yet",
                                       "predict:b: nothing made for 2026-01-01 yet"]


def test_why_names_a_dated_steps_code_change_once(project: Path) -> None:
    edit(project / "tiny_steps.py", "def predict(inputs, params, outputs):\n",
         "def predict(inputs, params, outputs):\n    print('predicting')\n")
    assert run_doit(project, "why", "predict:a").stdout == (
        "predict:a: code changed since 2026-01-01 was made: tiny_steps.py\n")


def test_why_skips_a_step_kind_no_pipeline_has(project: Path) -> None:
    result = run_doit(project, "why", "explain", "+steps.explain={outputs: {r: r.txt}}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_a_dated_output_is_judged_by_the_model_it_was_made_from(project: Path) -> None:
    assert doit(project, "predict:a", "date=2026-04-01") == {"predict:a"}  # from the first model
    assert doit(project, "predict:a", "date=2026-04-02", "pipelines.a.train.alpha=0.9") == {"train:a", "predict:a"}
    assert doit(project, "train:a") == {"train:a"}  # the first model again, byte for byte
    assert doit(project, "predict:a", "date=2026-04-01") == set()
    assert doit(project, "predict:a", "date=2026-04-02") == {"predict:a"}


def test_a_date_option_is_the_date_override(project: Path) -> None:
    with (project / "tiny_steps.py").open("a") as steps:
        steps.write("\n\ndef predict_until(inputs, params, outputs):\n"
                    "    outputs['forecast'].write_text(f\"{params['date']}|{params['until']}\")\n")
    edit(project / "conf/pipelines/a.yaml", "  fn: tiny_steps.predict\n",
         "  fn: tiny_steps.predict_until\n  until: ${date}\n")
    assert doit(project, "predict:a", "--date", "2026-03-03") == {"predict:a"}
    forecast = project / "outputs/dev/a/predict/forecast_2026-03-03.csv"
    assert forecast.read_text() == "2026-03-03|2026-03-03"
    assert doit(project, "predict:a", "date=2026-03-03") == set()
    assert doit(project, "predict:a", "--date=2026-03-03") == set()
    both = run_doit(project, "predict:a", "date=2026-03-04", "--date", "2026-03-03")
    assert (both.returncode, both.stdout) == (1, "")
    assert both.stderr == "mlops: error: date=2026-03-04 and --date 2026-03-03 disagree; give the day once\n"
    assert doit(project, "predict:a", "date=2026-03-03", "--date", "2026-03-03") == set()


def test_a_failed_run_keeps_every_record_and_why_names_the_failure(project: Path) -> None:
    bad = run_doit(project, "predict:a", "--date", "2026-02-30")
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr == "mlops: error: --date: '2026-02-30' is not a date; write --date=YYYY-MM-DD\n"
    edit(project / "tiny_steps.py", "def predict(inputs, params, outputs):\n",
         "def predict(inputs, params, outputs):\n    if params['date'] == '2026-03-03':\n"
         "        raise ValueError('no data for\\nthat day')\n")
    assert doit(project, "predict:a", "date=2026-02-01") == {"predict:a"}
    assert run_doit(project, "predict:a", "date=2026-03-03").returncode != 0
    assert run_doit(project, "why", "predict:a", "date=2026-03-03").stdout == (
        "predict:a: failed last time (tiny_steps.predict raised ValueError: no data for that day "
        '(params: {"date": "2026-03-03"})); it runs again\n'
        "predict:a: nothing made for 2026-03-03 yet\n")
    assert doit(project, "predict:a", "date=2026-02-01") == set()  # the other dates' records stay
    assert doit(project, "predict:a") == {"predict:a"}  # code changed since 2026-01-01 was made
