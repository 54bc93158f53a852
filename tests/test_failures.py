"""Every failure a user can hit: one line that says what to do, a non-zero exit, no traceback of ours,
nothing lost."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import DOIT, edit, environment, ran, run_doit

EXITS = "\n\ndef exits(inputs, params, outputs):\n    import sys\n    sys.exit(3)\n"
RAISES = ("\n\ndef raises(inputs, params, outputs):\n    check(params)\n\n\n"
          "def check(params):\n    raise ValueError(f\"alpha {params['alpha']} is not a number\")\n")


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_a_step_that_calls_sys_exit_fails_in_one_line(ran_project: Path) -> None:
    with (ran_project / "tiny_steps.py").open("a") as steps:
        steps.write(EXITS)
    result = run_doit(ran_project, "train:a", "pipelines.a.train.fn=tiny_steps.exits")
    assert result.returncode == 1
    assert ("train:a: tiny_steps.exits called sys.exit(3); a step reports a failure by raising an exception "
            '(params: {"alpha": 0.5, "api_token": "", "unused": 1})') in result.stdout


def test_a_step_exception_shows_the_steps_frames_and_one_line_with_its_params(ran_project: Path) -> None:
    with (ran_project / "tiny_steps.py").open("a") as steps:
        steps.write(RAISES)
    result = run_doit(ran_project, "train:a", "pipelines.a.train.fn=tiny_steps.raises",
                      env={"MLOPS_TEST_TOKEN": "SENTINEL-9"})
    assert result.returncode == 1
    trace = result.stdout[result.stdout.index("Traceback"):]
    frames = [line for line in trace.splitlines() if line.startswith('  File "')]
    assert [line.rsplit(" ", 1)[-1] for line in frames] == ["raises", "check"]
    assert ("train:a: tiny_steps.raises raised ValueError: alpha 0.5 is not a number "
            '(params: {"alpha": 0.5, "api_token": "********", "unused": 1})') in trace
    assert "SENTINEL-9" not in result.stdout + result.stderr


def test_a_missing_input_stops_the_step_before_it_runs(ran_project: Path) -> None:
    features = ran_project / "outputs/dev/a/prepare/features.csv"
    before = features.stat().st_mtime_ns
    words = ("prepare:a", "+pipelines.a.prepare.inputs.holidays=data/nope.csv")
    result = run_doit(ran_project, *words)
    assert result.returncode == 1
    assert ("prepare:a: input 'holidays' is missing: data/nope.csv (pipelines.a.prepare.inputs.holidays); "
            "the step did not run") in result.stdout
    assert features.stat().st_mtime_ns == before
    why = run_doit(ran_project, "why", *words).stdout.splitlines()
    assert why[0] == ("prepare:a: input missing: data/nope.csv (pipelines.a.prepare.inputs.holidays); "
                      "the step cannot run until it exists")


@pytest.mark.parametrize("damaged", ['{"garbage": ', "[1, 2]", '{"train:a": 3}'])
def test_a_damaged_state_file_is_set_aside_and_said(ran_project: Path, damaged: str) -> None:
    state = ran_project / "outputs/dev/.doit-state.json"
    (ran_project / "outputs/dev/.doit-state.json.journal").write_text("")
    state.write_text(damaged)
    (ran_project / "outputs/dev/.digests.json").write_text('{"data/a.txt": 3, "data/b.txt": [1]}')
    result = run_doit(ran_project)
    assert result.returncode == 0
    kept = list(state.parent.glob(".doit-state.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_text() == damaged
    said = result.stderr.splitlines()
    assert f"kept as outputs/dev/{kept[0].name}" in said[0] and said[1].startswith("mlops: 8 ran, 0 up to date")
    assert ran(run_doit(ran_project)) == set()


@pytest.mark.parametrize("name", [".doit-state.json", ".digests.json"])
def test_a_folder_where_the_state_goes_is_one_line(ran_project: Path, name: str) -> None:
    path = ran_project / "outputs/dev" / name
    path.unlink()
    path.mkdir()
    for command in ((), ("why",)):
        result = run_doit(ran_project, *command)
        assert (result.returncode, result.stderr) == (1, f"mlops: error: outputs/dev/{name} is a folder (or not "
                                                          "a file), where mlops keeps its state; move it away\n")


def test_a_folder_where_an_output_goes_fails_that_step_in_one_line(ran_project: Path) -> None:
    model = ran_project / "outputs/dev/a/train/model.pkl"
    model.unlink()
    model.mkdir()
    why = run_doit(ran_project, "why")
    no_traceback(why)
    assert "train:a: output changed since the step made it: outputs/dev/a/train/model.pkl" in why.stdout
    result = run_doit(ran_project)
    no_traceback(result)
    assert "train:a: outputs/dev/a/train/model.pkl is a folder, where the step's output file goes; move it away" \
        in result.stdout


def test_a_syntax_error_in_a_step_module_names_file_and_line(ran_project: Path) -> None:
    with (ran_project / "tiny_steps.py").open("a") as steps:
        steps.write("\n\ndef broken(:\n")
    for command in (("list",), ()):
        result = run_doit(ran_project, *command)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.startswith("mlops: error: tiny_steps.py:22: syntax error (invalid syntax) in the "
                                        "module of pipelines.a.prepare.fn")


@pytest.mark.parametrize("words", [("-f", "../dodo.py", "list"), ("-k", "list")])
def test_doit_started_in_a_subfolder_says_where_to_run(ran_project: Path, words: tuple[str, ...]) -> None:
    sub = ran_project / "sub"
    sub.mkdir()
    result = subprocess.run([DOIT, *words], cwd=sub, env={**environment(), "PWD": str(sub)},
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (f"mlops: error: doit was started outside the project folder {ran_project.name}/, "
                             "so it did not read the project's settings from its pyproject.toml; "
                             "run it there: cd .. && doit ...\n")


def test_dumpdb_prints_the_state(ran_project: Path) -> None:
    result = run_doit(ran_project, "dumpdb")
    assert result.returncode == 0
    state = json.loads(result.stdout)
    assert set(state["train:a"]["_values_:"]["made"][""]) == {"reads", "files", "code", "outputs", "id"}


@pytest.mark.parametrize("command", ["list --all", "why", "print_config", "", "clean --dry-run"])
def test_a_closed_pipe_ends_a_printing_command_quietly(ran_project: Path, command: str) -> None:
    for index in range(60):  # enough lines to fill the pipe
        (ran_project / f"conf/pipelines/p{index}.yaml").write_text((ran_project / "conf/pipelines/a.yaml").read_text())
    result = subprocess.run(f"{DOIT} {command} | head -1", shell=True, cwd=ran_project, env=environment(),
                            capture_output=True, text=True)
    assert len(result.stdout.splitlines()) == 1
    if command:
        assert result.stderr == ""
    else:  # only the pipe's reader went away: stderr has the run's report, and nothing else
        assert result.stderr.startswith("mlops: ") and "ran, " in result.stderr.splitlines()[0]
        assert "Traceback" not in result.stderr


BAD_WORDS = [
    (("trian",), "trian: no such task; choose one of: evaluate, predict, prepare, print_config, publish, train "
                 "(doit list --all shows each)"),
    (("list", "trian"), "trian: no such task; choose one of:"),
    (("predict", "--date", "2026-02-02"), "--date 2026-02-02: only a dated step's task takes it (such as predict:a); "
                                          "for every pipeline, write date=2026-02-02"),
    (("predict:a", "date=2026-02-01", "--date", "2026-02-02"),
     "date=2026-02-01 and --date 2026-02-02 disagree; give the day once"),
    (("pipelines.a.train.alpha=interval(0,1)",), "pipelines.a.train.alpha=interval(0,1): interval(...) is a "
                                                 "continuous range, and a sweep runs given values"),
    (("--db-file", "/nonexistent/state.json"), "--db-file /nonexistent/state.json: the folder /nonexistent does not"),
    (("pipelines.a.train.alpha=é",), "(a value with characters beyond ASCII must be quoted: key='value')"),
    (("+pipelines.new-p.prepare={fn: tiny_steps.prepare}",),
     "pipelines.new-p: a pipeline name must be a plain identifier (letters, digits, _)"),
]


def test_bad_words_give_one_line_and_run_nothing(ran_project: Path) -> None:
    shutil.rmtree(ran_project / ".mlops")
    before = {path: path.stat().st_mtime_ns for path in (ran_project / "outputs").rglob("*") if path.is_file()}
    for words, message in BAD_WORDS:
        result = run_doit(ran_project, *words)
        assert (result.returncode, result.stdout) == (1, ""), words
        assert result.stderr.startswith("mlops: error: ") and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    after = {path: path.stat().st_mtime_ns for path in (ran_project / "outputs").rglob("*") if path.is_file()}
    assert after == before and not (ran_project / ".mlops").exists()  # nothing written, no config cached


def test_a_long_added_key_is_just_a_key(ran_project: Path) -> None:
    result = run_doit(ran_project, f"+{'k' * 300}=1")
    assert result.returncode == 0 and ran(result) == set(), result.stderr


def test_an_env_file_that_leaves_env_to_the_base_is_warned_about(ran_project: Path) -> None:
    (ran_project / "conf/env/staging.yaml").write_text("# @package _global_\ngcp:\n  project: x\n")
    result = run_doit(ran_project, "list", "env=staging")
    assert result.returncode == 0
    assert result.stderr == ("mlops: warning: conf/env/staging.yaml does not set `env:`, so ${env} is 'dev' from the "
                             "base and what is built from it points there; set `env: staging`, or `env: dev` to say "
                             "so\n")


def test_clean_dry_run_names_what_it_deletes(ran_project: Path) -> None:
    result = run_doit(ran_project, "clean", "--dry-run", "train:a", "predict:a")
    assert result.stdout.splitlines() == [
        "train:a - executing 'Python: delete outputs/dev/a/train/model.pkl, outputs/dev/a/train/provenance.json'",
        "predict:a - executing 'Python: delete outputs/dev/a/predict/forecast_*.csv, "
        "outputs/dev/a/predict/provenance.json'"]
    assert (ran_project / "outputs/dev/a/train/model.pkl").is_file()


CALLABLES = '''

import functools

from tiny_reexport import shout as loud_train


class Steps:
    @staticmethod
    def train(inputs, params, outputs):
        train(inputs, params, outputs)


partial_train = functools.partial(train)
NOT_CALLABLE = int("3")
'''


def test_fn_may_name_any_callable_the_module_binds(ran_project: Path) -> None:
    (ran_project / "tiny_reexport.py").write_text(
        "def shout(inputs, params, outputs):\n    outputs['model'].write_text('LOUD')\n")
    with (ran_project / "tiny_steps.py").open("a") as steps:
        steps.write(CALLABLES)
    for fn in ("tiny_steps.Steps.train", "tiny_steps.partial_train", "tiny_steps.loud_train"):
        result = run_doit(ran_project, "train:a", f"pipelines.a.train.fn={fn}")
        assert result.returncode == 0 and "train:a" in ran(result), (fn, result.stdout + result.stderr)
    result = run_doit(ran_project, "train:a", "pipelines.a.train.fn=tiny_steps.NOT_CALLABLE")
    assert result.returncode == 1 and "train:a: 'tiny_steps.NOT_CALLABLE' is not a function (it is a int)" \
        in result.stdout
    result = run_doit(ran_project, "list", "pipelines.a.train.fn=tiny_steps.nope")
    assert result.stderr == ("mlops: error: pipelines.a.train.fn (in conf/pipelines/a.yaml): module 'tiny_steps' "
                             "defines no function 'nope'; choose one of: NOT_CALLABLE, Steps, evaluate, loud_train, "
                             "partial_train, predict, prepare, train\n")
    result = run_doit(ran_project, "list", "pipelines.a.train.fn=tiny_steps.json.dumps")  # a library's, via ours
    assert result.stderr.endswith("'tiny_steps.json.dumps' reaches past the module's own names; name a function "
                                  "the module binds, or a method of a class it defines (module.Class.method)\n")


def test_a_module_that_fails_as_it_is_imported_is_one_line_and_its_frames(ran_project: Path) -> None:
    (ran_project / "broken_helper.py").write_text("SETTINGS = {}\nLIMIT = SETTINGS['limit']\n")
    edit(ran_project / "tiny_steps.py", "import json\n", "import json\nimport broken_helper\n")
    result = run_doit(ran_project, "prepare:a")
    assert result.returncode == 1
    assert ("prepare:a: cannot load step function 'tiny_steps.prepare': importing tiny_steps raised "
            "KeyError: 'limit'") in result.stdout
    frames = [line for line in result.stdout.splitlines() if line.startswith('  File "')]
    assert [line.split('"')[1].rsplit("/", 1)[-1] for line in frames] == ["tiny_steps.py", "broken_helper.py"]


def test_an_input_missing_for_one_run_keeps_the_record(ran_project: Path) -> None:
    raw = ran_project / "data/a.txt"
    raw.rename(ran_project / "a.txt.away")
    assert run_doit(ran_project).returncode != 0
    (ran_project / "a.txt.away").rename(raw)
    assert ran(run_doit(ran_project)) == set()



def test_a_pipeline_file_that_is_not_a_mapping_says_what_it_holds(ran_project: Path) -> None:
    (ran_project / "conf/pipelines/c.yaml").write_text("hello\n")
    result = run_doit(ran_project, "list")
    assert result.stderr == ("mlops: error: conf/pipelines/c.yaml: must hold a mapping of step names to parameters "
                             "(prepare:, train:, ...), not the str 'hello'\n")


ODD_STEPS = '''

class Stop(BaseException):
    pass


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no")


def interrupts(inputs, params, outputs):
    raise KeyboardInterrupt


def stops(inputs, params, outputs):
    raise Stop("halt")


def unprintable(inputs, params, outputs):
    raise Unprintable()


def wanders(inputs, params, outputs):
    import os
    os.chdir(os.path.dirname(os.getcwd()))
    outputs["model"].write_text("written from elsewhere")
'''


def test_whatever_a_step_raises_is_its_failure_in_one_line(ran_project: Path) -> None:
    with (ran_project / "tiny_steps.py").open("a") as steps:
        steps.write(ODD_STEPS)
    for fn, what in [("interrupts", "raised KeyboardInterrupt: "), ("stops", "raised Stop: halt"),
                     ("unprintable", "raised Unprintable: (its message cannot be shown: str() of it failed)")]:
        result = run_doit(ran_project, "train:a", f"pipelines.a.train.fn=tiny_steps.{fn}")
        assert result.returncode == 1, fn
        assert f"train:a: tiny_steps.{fn} {what}" in result.stdout, result.stdout + result.stderr
        frames = [line for line in result.stdout.splitlines() if line.startswith('  File "')]
        assert all("tiny_steps.py" in line for line in frames), frames
    # A step that changes the working folder: its output lands where it belongs, the state stays put.
    result = run_doit(ran_project, "train:a", "pipelines.a.train.fn=tiny_steps.wanders")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (ran_project / "outputs/dev/a/train/model.pkl").read_text() == "written from elsewhere"
    assert not (ran_project.parent / "outputs").exists()


def test_damaged_records_journal_lock_and_cache_cost_a_rerun_not_a_traceback(ran_project: Path) -> None:
    state = ran_project / "outputs/dev/.doit-state.json"
    records = json.loads(state.read_text())
    records["train:a"]["_values_:"]["made"][""] = 5
    records["prepare:a"]["data/a.txt"] = "a stamp of another shape"
    state.write_text(json.dumps(records))
    with (ran_project / "outputs/dev/.doit-state.json.journal").open("ab") as journal:
        journal.write(b'{"set": "train:b"}\n{"remove": [1]}\n\xff\xfe\n')
    (ran_project / "outputs/dev/.locks/tasks").write_bytes(b"\xff" * 64)
    for entry in (ran_project / ".mlops/cache").glob("*.json"):
        entry.write_text("[1]")
    result = run_doit(ran_project, "pipelines.b.train.alpha=0.7")
    no_traceback(result)
    assert result.returncode == 0 and {"train:a", "train:b"} <= ran(result)
    assert ran(run_doit(ran_project, "pipelines.b.train.alpha=0.7")) == set()


def test_another_checkers_state_costs_a_rerun(ran_project: Path) -> None:
    assert run_doit(ran_project, "--check_file_uptodate", "timestamp", "-a", "prepare:a").returncode == 0
    for command in (("why",), ()):
        result = run_doit(ran_project, *command)
        no_traceback(result)
        assert result.returncode == 0


@pytest.mark.parametrize("damage", ["not-utf8", "link-loop"])
def test_a_config_file_that_cannot_be_read_is_one_line(ran_project: Path, damage: str) -> None:
    pipeline = ran_project / "conf/pipelines/c.yaml"
    if damage == "not-utf8":
        pipeline.write_bytes(b"prepare: {fn: tiny_steps.prepare, scale: \xff}\n")
        message = "conf/pipelines/c.yaml: not UTF-8 text (byte 0xff at offset 41); save it as UTF-8"
    else:
        pipeline.symlink_to("c.yaml")
        message = "conf/pipelines/c.yaml: cannot be read (Too many levels of symbolic links)"
    result = run_doit(ran_project, "list")
    assert (result.returncode, result.stderr) == (1, f"mlops: error: {message}\n")


def test_a_file_where_an_output_folder_goes_fails_that_step_in_one_line(ran_project: Path) -> None:
    train = ran_project / "outputs/dev/a/train"
    for path in train.iterdir():
        path.unlink()
    train.rmdir()
    train.write_text("x")
    (ran_project / "outputs/dev/b/train/model.pkl").unlink()
    (ran_project / "outputs/dev/b/train/model.pkl").symlink_to("model.pkl")  # a link loop
    for command in (("why",), ("--continue",)):
        result = run_doit(ran_project, *command)
        no_traceback(result)
    assert "train:a: outputs/dev/a/train: File exists\n" in result.stdout


def test_a_file_where_a_state_folder_goes_is_one_line(ran_project: Path) -> None:
    failed = ran_project / "outputs/dev/.failed"
    if failed.exists():
        failed.rmdir()
    failed.write_text("")
    result = run_doit(ran_project)
    assert (result.returncode, result.stderr) == (
        1, "mlops: error: outputs/dev/.failed is a file, where mlops keeps a folder of its state; move it away\n")
