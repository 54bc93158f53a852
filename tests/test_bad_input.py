"""Bad input: one clear line, a non-zero exit, no traceback, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import REPO, copy_project, run_doit
from mlops.config import CommandLine, Config, ConfigError, keep, load
from mlops.config.sweeps import split_sweeps

BASE_LINES = len((REPO / "conf" / "config.yaml").read_text().splitlines())
ALPHA = "pipelines.pipeline_1.train.alpha"
HUGE = "1" * 5000  # more digits than Python reads as an integer (sys.get_int_max_str_digits)


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
    pytest.param(no_change, [f"{ALPHA}=${{oc.env:HOME}},0.5"],
                 f"{ALPHA}=${{oc.env:HOME}}: ${{...}} on the command line is refused", id="cli-interpolation-swept"),
    pytest.param(no_change, [f"{ALPHA}=$\\{{oc.env\\:HOME\\}}"],
                 f"{ALPHA}=${{oc.env:HOME}}: ${{...}} on the command line is refused", id="cli-interpolation-escaped"),
    pytest.param(no_change, [f"{ALPHA}={HUGE}"], f"{ALPHA}: an integer of 5000 digits", id="huge-integer"),
    pytest.param(no_change, [f"{ALPHA}=1,{HUGE}"], f"{ALPHA}: an integer of 5000 digits", id="huge-integer-swept"),
    pytest.param(no_change, [f"{ALPHA}=glob(*)"], f"{ALPHA}=glob(*): glob(...) picks", id="glob-sweep"),
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


@pytest.fixture
def in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled: None) -> Path:
    """A copy of the demo project to load configs from in this process, with a variable a refused value names."""
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLOPS_TEST_VAR", "0.7")
    return root


def configs(root: Path, *overrides: str) -> list[Config]:
    """Load the configs a command line asks for, as a command does: its own, then each sweep variant's."""
    command_line, variants = split_sweeps(CommandLine(overrides))
    extras = [(), *(variant.overrides for variant in variants)]
    return [load(root, CommandLine((*command_line.overrides, *extra))) for extra in extras]


def cache_the_base(root: Path) -> None:
    """Keep the config of an empty command line, so that a value override is derived from it without Hydra."""
    keep(load(root, CommandLine()))


# What Hydra parses to a string holding ${...}, which OmegaConf would then resolve: written as is, escaped for
# Hydra's grammar, quoted, as an element of a sweep (which Hydra writes back escaped), inside lists and mappings.
INTERPOLATING = [
    f"{ALPHA}=${{oc.env:MLOPS_TEST_VAR}}",
    f"{ALPHA}=$\\{{oc.env\\:MLOPS_TEST_VAR\\}}",
    f"{ALPHA}='${{oc.env:MLOPS_TEST_VAR}}'",
    f"{ALPHA}=${{oc.env:MLOPS_TEST_VAR}},0.5",
    f"{ALPHA}=0.5,'${{oc.env:MLOPS_TEST_VAR}}'",
    f"{ALPHA}=choice(0.5,x$\\{{now\\:%H\\}})",
    "+extra=[1,{a: '${hydra:runtime.cwd}'}]",
    "+extra={a: [$\\{oc.env\\:MLOPS_TEST_VAR\\}]},[]",
]


@pytest.mark.parametrize("cached", [False, True], ids=["composed", "derived"])
@pytest.mark.parametrize("override", INTERPOLATING)
def test_an_interpolation_is_refused_on_every_path_a_value_takes(in_process: Path, override: str,
                                                                  cached: bool) -> None:
    if cached:
        cache_the_base(in_process)
    with pytest.raises(ConfigError, match=r": \$\{\.\.\.\} on the command line is refused \(it could read any"):
        configs(in_process, override)


def test_a_key_allowed_to_interpolate_is_allowed_on_every_path(in_process: Path) -> None:
    pyproject = in_process / "pyproject.toml"
    text = pyproject.read_text()
    assert "allow_interpolation = []" in text
    pyproject.write_text(text.replace("allow_interpolation = []", f'allow_interpolation = ["{ALPHA}"]'))
    cache_the_base(in_process)
    alphas = [cfg.values["pipelines"]["pipeline_1"]["train"]["alpha"]
              for cfg in configs(in_process, f"{ALPHA}=$\\{{oc.env\\:MLOPS_TEST_VAR\\}},0.5")]
    assert alphas[1:] == ["0.7", 0.5]


@pytest.mark.parametrize("cached", [False, True], ids=["composed", "derived"])
@pytest.mark.parametrize("override", [f"{ALPHA}={HUGE}", f"{ALPHA}=1,{HUGE}", f"+extra=[{HUGE}]", f"+extra='{HUGE}'"])
def test_an_integer_longer_than_python_reads_is_one_line_on_every_path(in_process: Path, override: str,
                                                                       cached: bool) -> None:
    if cached:
        cache_the_base(in_process)
    if override.endswith("'"):  # quoted: text, as the message says to write it
        assert configs(in_process, override)[0].values["extra"] == HUGE
        return
    with pytest.raises(ConfigError, match=r"^\+?[a-z_.0-9]+: an integer of 5000 digits is more than Python reads"):
        configs(in_process, override)
