"""Bad input: one clear line, a non-zero exit, no traceback, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import REPO, run_doit

BASE_LINES = len((REPO / "conf" / "config.yaml").read_text().splitlines())


def files(project: Path) -> set[Path]:
    return {p.relative_to(project) for p in project.rglob("*")}


def no_change(project: Path) -> None:
    """Leave the copy as it is."""


def edit(relative: str, text: str, append: bool = True) -> Callable[[Path], None]:
    def change(project: Path) -> None:
        path = project / relative
        path.write_text((path.read_text() if append and path.exists() else "") + text)
    return change


def replace(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def change(project: Path) -> None:
        path = project / relative
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new))
    return change


CASES = [
    pytest.param(no_change, ["env=prdo"],
                 "env=prdo: no such option in conf/env/; choose one of: dev, prod, sandbox", id="unknown-env"),
    pytest.param(edit("conf/config.yaml", "broken: [1, 2\n"), [],
                 f"conf/config.yaml:{BASE_LINES + 1}: not valid YAML", id="yaml-base"),
    pytest.param(edit("conf/env/prod.yaml", "gcp:\n  project: a\n bad: 1\n"), ["env=prod"],
                 "conf/env/prod.yaml:5: not valid YAML", id="yaml-env"),
    pytest.param(edit("conf/pipelines/pipeline_2.yaml", "train:\n  alpha: : 2\n"), [],
                 "conf/pipelines/pipeline_2.yaml:17: not valid YAML", id="yaml-pipeline"),
    pytest.param(no_change, ["pipelines.pipeline_1.train.alpha=[0.1,"],
                 "override 'pipelines.pipeline_1.train.alpha=[0.1,' is not valid Hydra override syntax",
                 id="override-grammar"),
    pytest.param(no_change, ["pipelines.pipeline_1.train.alpah=0.1"],
                 "pipelines.pipeline_1.train.alpah: no such key in the config; "
                 "to add it, write +pipelines.pipeline_1.train.alpah=0.1", id="override-unknown-key"),
    pytest.param(no_change, ["gcp.regoin=eu"],
                 "gcp.regoin: no such key in the config; to add it, write +gcp.regoin=eu",
                 id="override-unknown-base-key"),
    pytest.param(edit("conf/pipelines/pipeline_1.yaml", "  extra: ${data.missing}\n"), [],
                 "pipelines.pipeline_1.predict.extra (in conf/pipelines/pipeline_1.yaml): refers to "
                 "${data.missing}, which is not in the config", id="missing-reference"),
    pytest.param(edit("conf/config.yaml", "secret_token: ${oc.env:MLOPS_TEST_UNSET_VAR}\n"), [],
                 "secret_token: environment variable MLOPS_TEST_UNSET_VAR is not set; export it, "
                 "or give a default: ${oc.env:MLOPS_TEST_UNSET_VAR,default}", id="unset-env-var"),
    pytest.param(no_change, ["train:pipeline_9"],
                 "train:pipeline_9: no such task; pipelines with a train step: pipeline_1, pipeline_2",
                 id="unknown-pipeline"),
    pytest.param(edit("conf/pipelines/pipeline_1.yaml", "trian:\n  fn: mlops.pipelines.demand.train_linear\n"), [],
                 "pipelines.pipeline_1.trian (in conf/pipelines/pipeline_1.yaml): 'trian' is not a step kind; "
                 "choose one of: prepare, train, evaluate, predict", id="unknown-step"),
    pytest.param(no_change, ["pipelines.pipeline_1.train.fn=mlops.pipelines.demand.fit"],
                 "pipelines.pipeline_1.train.fn (in conf/pipelines/pipeline_1.yaml): module "
                 "'mlops.pipelines.demand' defines no function 'fit'; choose one of:", id="unknown-function"),
    pytest.param(edit("conf/pipelines/my-pipeline.yaml", "param1: x\n", append=False), [],
                 "conf/pipelines/my-pipeline.yaml: a pipeline name must be a plain identifier (letters, digits, _); "
                 "rename it, e.g. to my_pipeline.yaml", id="pipeline-file-name"),
    pytest.param(no_change, ["pipelines.pipeline_1.train.alpha=???"],
                 "pipelines.pipeline_1.train.alpha (in conf/pipelines/pipeline_1.yaml): a required value (???) "
                 "is not set", id="missing-required"),
    pytest.param(no_change, ["date=2026-02-30"], "date: '2026-02-30' is not a date; write date=YYYY-MM-DD",
                 id="bad-date"),
    pytest.param(no_change, ["~gcp"], "~gcp: doit reads a word without '=' as a task name; write ~gcp= to delete",
                 id="bare-deletion"),
    pytest.param(no_change, ["paths.root=../elsewhere"],
                 "paths.root: '../elsewhere' must be a relative folder inside the project", id="root-escapes"),
    pytest.param(no_change, ["paths.root=/tmp/elsewhere"],
                 "paths.root: '/tmp/elsewhere' must be a relative folder inside the project", id="root-absolute"),
    pytest.param(no_change, ["paths.root=out\nx"], "override 'paths.root=out\\nx' is not valid Hydra override syntax",
                 id="root-newline"),
    pytest.param(replace("conf/config.yaml", "  root: outputs", "  root: \"out\\nx\""), [],
                 "must be a relative folder inside the project", id="root-newline-in-yaml"),
    pytest.param(no_change, ["env=../config"], "env=../config: an env option is the name of a file in conf/env/",
                 id="env-escapes"),
    pytest.param(no_change, ["user=${oc.env:HOME}"],
                 "user=${oc.env:HOME}: ${...} on the command line is refused", id="cli-interpolation"),
    pytest.param(no_change, ["+extra=${oc.env:HOME}"],
                 "+extra=${oc.env:HOME}: ${...} on the command line is refused", id="cli-interpolation-added"),
    pytest.param(no_change, ["steps.train.needs=[evaluate]"],
                 "steps.train.needs: must list step kinds declared before it, each once; choose from: prepare",
                 id="step-kind-needs-later-kind"),
    pytest.param(no_change, ["steps.train.outputs.model=../model.pkl"],
                 "steps.train.outputs.model: an output is a plain name mapped to a file name in the step's folder",
                 id="step-kind-output-leaves-folder"),
    pytest.param(no_change, ["steps.predict.dated=false"],
                 "steps.predict.outputs.forecast: 'forecast_{date}.csv': a dated step's file names hold {date}",
                 id="step-kind-date-in-undated"),
    *[pytest.param(no_change, [f"+steps.{name}={{doc: x, outputs: {{o: o.txt}}}}"],
                   f"steps.{name}: {why}; give the step kind another name", id=f"step-kind-named-{name}")
      for name, why in [("list", "'list' is a doit command"), ("why", "'why' is a doit command"),
                        ("print_config", "dodo.py already has a task 'print_config'"),
                        ("publish", "dodo.py already has a task 'publish'")]],
    pytest.param(no_change, ["+steps.train.retries=2"],
                 "steps.train.retries: not a step kind setting; choose one of: doc, outputs, needs, dated",
                 id="step-kind-unknown-setting"),
    *[pytest.param(no_change, [f"pipelines.pipeline_1.train.fn={fn}"],
                   f"step functions may come only from this project's modules and mlops.pipelines, not '{module}'",
                   id=f"fn-{fn}") for fn, module in [("os.system", "os"), ("builtins.open", "builtins"),
                                                     ("shutil.copyfile", "shutil")]],
]


# `doit list` loads the config as `doit` does: one case of each kind is enough to show it fails alike.
LISTED = {"unknown-env", "yaml-pipeline", "override-unknown-key", "missing-reference", "unknown-step",
          "bad-date", "bare-deletion", "root-escapes", "cli-interpolation", "step-kind-needs-later-kind",
          "fn-os.system", "step-kind-named-list"}
RUNS = [pytest.param(*case.values, [], id=f"run-{case.id}") for case in CASES] + \
       [pytest.param(*case.values, ["list"], id=f"list-{case.id}") for case in CASES if case.id in LISTED]


@pytest.mark.parametrize(("change", "args", "message", "command"), RUNS)
def test_bad_input_gives_one_line_and_writes_nothing(demo: Path, change, args, message, command) -> None:
    project = demo
    change(project)
    before = files(project)
    result = run_doit(project, *command, *args)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mlops: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert files(project) == before


@pytest.mark.parametrize("backend", ["sqlite3", "dbm"])
def test_another_backend_asked_to_open_our_state_file_is_one_line(ran_project: Path, backend: str) -> None:
    result = run_doit(ran_project, "--backend", backend)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"mlops: error: --backend {backend}: ") and "--db-file" in result.stderr
    assert len(result.stderr.splitlines()) == 1
