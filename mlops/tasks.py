"""Step kinds (prepare -> train -> evaluate -> predict) and the doit task creators built from them."""

from __future__ import annotations

import ast
import datetime as dt
import functools
import hashlib
import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from doit.exceptions import TaskFailed
from doit.globals import Globals
from doit.tools import config_changed

from mlops.config import Config, ConfigError, session
from mlops.reporter import Reporter
from mlops.runner import StepCall, run_step

DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
STATE_FILE = ".doit-state.json"


@dataclass(frozen=True)
class StepKind:
    """A kind of step: a doit task group with one subtask per pipeline that has a section for it."""

    name: str
    doc: str
    outputs: dict[str, str]
    needs: tuple[str, ...] = ()
    dated: bool = False


STEP_KINDS: dict[str, StepKind] = {}


def step_kind(name: str, doc: str, outputs: dict[str, str], needs: tuple[str, ...] = (),
              dated: bool = False) -> StepKind:
    """Declare a step kind; its outputs' file names may use {date} when it is dated."""
    unknown = [need for need in needs if need not in STEP_KINDS]
    if unknown:
        raise ValueError(f"step kind '{name}' needs '{unknown[0]}', which is not declared before it")
    STEP_KINDS[name] = StepKind(name, doc, outputs, needs, dated)
    return STEP_KINDS[name]


step_kind("prepare", "Build each pipeline's features from its data.",
          outputs={"features": "features.csv"})
step_kind("train", "Fit each pipeline's model on its training features.",
          outputs={"model": "model.pkl"}, needs=("prepare",))
step_kind("evaluate", "Score each pipeline's model on the holdout; write metrics as JSON.",
          outputs={"metrics": "metrics.json"}, needs=("prepare", "train"))
step_kind("predict", "Forecast one day (date=YYYY-MM-DD) with each pipeline's model; write a CSV.",
          outputs={"forecast": "forecast_{date}.csv"}, needs=("train",), dated=True)


def dodo(root: Path) -> dict[str, Any]:
    """Return DOIT_CONFIG and every task creator for dodo.py; exit with one line on a config error."""
    try:
        cfg = session(root)
        steps = plan(cfg)
        check_task_names(sys.argv[1:], steps)
    except ConfigError as error:
        sys.exit(f"mlops: error: {error}")
    namespace: dict[str, Any] = {"DOIT_CONFIG": doit_config(cfg)}
    for kind in STEP_KINDS.values():
        namespace[f"task_{kind.name}"] = _creator(kind, [s for s in steps if s.kind is kind])
    namespace["task_print_config"] = _print_config_creator(cfg)
    return namespace


def doit_config(cfg: Config) -> dict[str, Any]:
    """Return doit's settings: every step kind by default, and state kept per env option."""
    state = env_dir(cfg) / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    return {
        "default_tasks": list(STEP_KINDS),
        "dep_file": str(state),
        "backend": "json",
        "reporter": Reporter,
    }


def env_dir(cfg: Config) -> Path:
    """Return the folder that holds this env option's outputs and doit state."""
    root = cfg.values.get("paths", {}).get("root", "outputs")
    return Path(str(root)) / cfg.env


@dataclass(frozen=True)
class Step:
    """One pipeline's step of one kind, as planned from the config."""

    kind: StepKind
    pipeline: str
    section: dict[str, Any]
    inputs: dict[str, str]
    folder: Path
    source: str
    date: str | None = None

    @property
    def task(self) -> str:
        return f"{self.kind.name}:{self.pipeline}"

    def outputs(self, date: str | None = None) -> dict[str, str]:
        return {name: str(self.folder / file.format(date=date)) for name, file in self.kind.outputs.items()}

    def call(self, date: str | None = None) -> StepCall:
        params = {k: v for k, v in self.section.items() if k not in ("fn", "inputs")}
        if self.kind.dated:
            params["date"] = date
        return StepCall(self.task, self.section["fn"], self.inputs, params, self.outputs(date))


def plan(cfg: Config) -> list[Step]:
    """Plan every pipeline's steps from the config, checking each section before anything runs."""
    steps = []
    date = None
    for pipeline, pipeline_cfg in cfg.pipelines.items():
        file = cfg.pipeline_files.get(pipeline)
        where = Where(f"pipelines.{pipeline}", f" (in {file.relative_to(cfg.root)})" if file else "")
        sections = _step_sections(pipeline_cfg or {}, where)
        folder = env_dir(cfg) / pipeline
        for name, section in sections.items():
            kind = STEP_KINDS[name]
            inputs = _inputs(kind, sections, section, folder, where / name)
            source = _source_file(section["fn"], where / name / "fn", cfg.root)
            if kind.dated and date is None:
                date = check_date(cfg.values.get("date"), "date")
            steps.append(Step(kind, pipeline, section, inputs, folder / name, source, date))
    return sorted(steps, key=lambda s: (list(STEP_KINDS).index(s.kind.name), s.pipeline))


def check_task_names(words: list[str], steps: list[Step]) -> None:
    """Fail on a `kind:pipeline` word naming no planned step, listing the pipelines that have that kind."""
    planned = {step.task for step in steps}
    for word in words:
        kind, colon, pipeline = word.partition(":")
        if colon and kind in STEP_KINDS and "=" not in word and word not in planned:
            having = [step.pipeline for step in steps if step.kind.name == kind]
            choices = ", ".join(having) if having else "no pipeline has one yet"
            raise ConfigError(f"{word}: no such task; pipelines with a {kind} step: {choices}")


def check_date(value: Any, source: str) -> str:
    """Return `value` if it is a YYYY-MM-DD date, else fail naming where it came from."""
    text = str(value)
    try:
        if DATE.match(text):
            dt.date.fromisoformat(text)
            return text
    except ValueError:
        pass
    raise ConfigError(f"{source}: '{value}' is not a date; write {source}=YYYY-MM-DD")


@dataclass(frozen=True)
class Where:
    """A config key and the file it comes from, for error messages."""

    key: str
    file: str = ""

    def __truediv__(self, part: str) -> "Where":
        return Where(f"{self.key}.{part}", self.file)

    def __str__(self) -> str:
        return f"{self.key}{self.file}"


def _step_sections(pipeline_cfg: Any, where: Where) -> dict[str, dict[str, Any]]:
    if not isinstance(pipeline_cfg, dict):
        raise ConfigError(f"{where}: must be a mapping of step names to parameters")
    sections = {}
    for key, value in pipeline_cfg.items():
        is_step = isinstance(value, dict) and "fn" in value
        if key in STEP_KINDS:
            if not is_step:
                raise ConfigError(f"{where / key}: a step needs `fn: package.module.function` "
                                  "naming the function that does it")
            if not isinstance(value["fn"], str) or "." not in value["fn"]:
                raise ConfigError(f"{where / key / 'fn'}: '{value['fn']}' is not a dotted function path "
                                  "such as mlops.pipelines.demand.prepare")
            sections[key] = value
        elif is_step:
            raise ConfigError(f"{where / key}: '{key}' is not a step kind; "
                              f"choose one of: {', '.join(STEP_KINDS)}")
    return sections


def _inputs(kind: StepKind, sections: dict[str, Any], section: dict[str, Any], folder: Path,
            where: Where) -> dict[str, str]:
    inputs = {}
    for need in kind.needs:
        if need not in sections:
            raise ConfigError(f"{where}: {kind.name} needs the outputs of {need}; "
                              f"add a {need} section to this pipeline")
        needed = STEP_KINDS[need]
        inputs.update({name: str(folder / need / file) for name, file in needed.outputs.items()})
    extra = section.get("inputs") or {}
    if not isinstance(extra, dict) or not all(isinstance(p, str) for p in extra.values()):
        raise ConfigError(f"{where / 'inputs'}: must map input names to file paths")
    return {**inputs, **extra}


def _source_file(dotted: str, where: Where, root: Path) -> str:
    module, _, function = dotted.rpartition(".")
    origin, defined = _module_functions(module)
    if origin is None:
        raise ConfigError(f"{where}: no Python module '{module}' to take '{function}' from")
    if function not in defined:
        choices = ", ".join(sorted(n for n in defined if not n.startswith("_")))
        raise ConfigError(f"{where}: module '{module}' defines no function '{function}'; "
                          f"choose one of: {choices}")
    source = Path(origin).resolve()
    # Inside the project, a relative path keeps doit's state valid when the project folder moves.
    return str(source.relative_to(root.resolve())) if source.is_relative_to(root.resolve()) else str(source)


@functools.cache
def _module_functions(module: str) -> tuple[str | None, frozenset[str]]:
    # Read the module's file without importing it: model code imports heavy libraries.
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None, frozenset()
    tree = ast.parse(Path(spec.origin).read_bytes(), spec.origin)
    return spec.origin, frozenset(node.name for node in tree.body
                                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _creator(kind: StepKind, steps: list[Step]) -> Callable[[], Iterator[dict[str, Any]]]:
    def create() -> Iterator[dict[str, Any]]:
        yield {"basename": kind.name, "name": None, "doc": kind.doc}
        for step in steps:
            yield dated_task(step) if kind.dated else step_task(step)
    create.__doc__ = kind.doc
    return create


def step_task(step: Step) -> dict[str, Any]:
    """Return the doit subtask of one step: inputs and code in, outputs out, rerun on config change."""
    call = step.call()
    return {
        "name": step.pipeline,
        "doc": f"{step.kind.name} {step.pipeline} with {step.section['fn']}",
        "actions": [(run_step, [call])],
        "file_dep": [*step.inputs.values(), step.source],
        "targets": list(call.outputs.values()),
        "uptodate": [config_changed(step.section)],
        "clean": True,
    }


def dated_task(step: Step) -> dict[str, Any]:
    """Return the subtask of a dated step: one output per date, each date up to date on its own."""
    dated = DatedStep(step)
    return {
        "name": step.pipeline,
        "doc": f"{step.kind.name} {step.pipeline} with {step.section['fn']} for one date",
        "actions": [dated.run],
        "file_dep": [*step.inputs.values(), step.source],
        "targets": list(step.outputs(dated.default).values()),
        "uptodate": [dated],
        "params": [{"name": "date", "long": "date", "type": str, "default": dated.default,
                    "help": "day to forecast, YYYY-MM-DD (default: the config's date, %(default)s)"}],
        "clean": [dated.clean],
    }


class DatedStep:
    """Up-to-date check and action of a dated step; doit's state keeps a signature per date."""

    def __init__(self, step: Step) -> None:
        self.step = step
        self.default = step.date

    def signature(self, date: str) -> str:
        """Digest of what the output for `date` is made from: parameters, date and input files."""
        files = sorted([*self.step.inputs.values(), self.step.source])
        contents = {path: _digest(path) for path in files}
        blob = json.dumps({"params": self.step.section, "date": date, "files": contents}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def __repr__(self) -> str:
        return "the output for this date, made from the current parameters and inputs"

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        """Say whether the output for the task's date exists and was made from what is there now."""
        date = task.options.get("date") if task.options else self.default
        if not DATE.match(str(date)):
            return False
        # The date option picks the target: doit's missing-target check then looks at that file.
        task.targets = list(self.step.outputs(date).values())
        return values.get("dates", {}).get(date) == self.signature(date)

    def run(self, date: str, task: Any) -> dict[str, Any] | Any:
        try:
            check_date(date, "--date")
        except ConfigError as error:
            return TaskFailed(f"{self.step.task}: {error}")
        failed = run_step(self.step.call(date))
        if failed is not None:
            return failed
        previous = Globals.dep_manager.get_values(task.name) if Globals.dep_manager else {}
        return {"dates": {**previous.get("dates", {}), date: self.signature(date)}}

    def clean(self) -> None:
        for name, file in self.step.kind.outputs.items():
            for path in self.step.folder.glob(file.format(date="*")):
                path.unlink()


def _digest(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return ""


def _print_config_creator(cfg: Config) -> Callable[[], dict[str, Any]]:
    def task_print_config() -> dict[str, Any]:
        """Print the resolved config as YAML, secrets masked (key=value words override it)."""
        return {
            "actions": [(_write, [cfg.to_yaml()])],
            "uptodate": [False],
            "verbosity": 2,
            "meta": {"plain_output": True},
        }
    return task_print_config


def _write(text: str) -> None:
    sys.stdout.write(text)
