"""Step kinds (prepare -> train -> evaluate -> predict) and the doit task creators built from them."""

from __future__ import annotations

import ast
import datetime as dt
import functools
import importlib.util
import json
import os
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from doit.exceptions import TaskFailed
from doit.globals import Globals

from mlops import signals
from mlops.config import MASK, Config, ConfigError, keep, masked, pyproject, secret_path, session, settings
from mlops.hashing import DigestCache, checker_for
from mlops.locks import TaskLock
from mlops.reporter import Reporter
from mlops.runner import StepCall, inside, run_step
from mlops.state import StateDB, read_state
from mlops.tracking import MISSING, SECRET_DIGEST, changes

DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
STATE_FILE = ".doit-state.json"
DIGESTS_FILE = ".digests.json"
STATE_BACKEND = "mlops"
LOCKS = ".locks"
DEFAULT_STEP_MODULES = ("mlops.pipelines",)
RUNNER_KEYS = ("fn", "inputs")  # keys the runner reads for the step; the rest are its parameters


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
    keep(cfg)
    signals.install()
    digests = DigestCache(env_dir(cfg) / DIGESTS_FILE)
    namespace: dict[str, Any] = {"DOIT_CONFIG": doit_config(cfg, digests)}
    for kind in STEP_KINDS.values():
        namespace[f"task_{kind.name}"] = _creator(kind, [s for s in steps if s.kind is kind], digests)
    namespace["task_print_config"] = _print_config_creator(cfg)
    return namespace


def doit_config(cfg: Config, digests: DigestCache) -> dict[str, Any]:
    """Return doit's settings: every step kind by default, state kept per env option, fast file checks."""
    state = env_dir(cfg) / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    return {
        "default_tasks": list(STEP_KINDS),
        "dep_file": str(state),
        "backend": state_backend(cfg.root),
        "check_file_uptodate": checker_for(digests),
        "reporter": Reporter,
    }


def state_backend(root: Path) -> str:
    """Return our state backend if the project's pyproject.toml registers it with doit, else doit's json."""
    plugins = pyproject(root).get("tool", {}).get("doit", {}).get("plugins", {})
    return STATE_BACKEND if plugins.get("backend", {}).get(STATE_BACKEND) == "mlops.state:StateDB" else "json"


def env_dir(cfg: Config) -> Path:
    """Return the folder that holds this env option's outputs and doit state, checked to stay inside."""
    root = str(cfg.values.get("paths", {}).get("root", "outputs"))
    unsafe = (not root or os.path.isabs(root) or ".." in Path(root).parts or
              any(char in root for char in "\0\n\r"))
    if unsafe:
        raise ConfigError(f"paths.root: {root[:80]!r} must be a relative folder inside the project, "
                          "such as outputs")
    if not SAFE_NAME.match(cfg.env):
        raise ConfigError(f"env={cfg.env[:80]!r}: an env option name must be a plain name (letters, digits, _ -)")
    return Path(root) / cfg.env


@dataclass(slots=True)
class Step:
    """One pipeline's step of one kind, as planned from the config."""

    kind: StepKind
    pipeline: str
    section: dict[str, Any]
    inputs: dict[str, str]
    folder: str
    source: str
    date: str | None = None
    root: str = "outputs"  # the outputs root every output must stay inside

    @property
    def task(self) -> str:
        return f"{self.kind.name}:{self.pipeline}"

    @property
    def locks(self) -> Path:
        """Return the folder of this env option's task locks."""
        return Path(self.folder).parents[1] / LOCKS

    def outputs(self, date: str | None = None) -> dict[str, str]:
        return {name: f"{self.folder}/{file.format(date=date)}" for name, file in self.kind.outputs.items()}

    def current(self, date: str | None = None) -> dict[str, Any]:
        """Return the section as the step sees it now: what its recorded reads are compared with."""
        return {**self.section, "date": date} if self.kind.dated else self.section

    def call(self, date: str | None = None) -> StepCall:
        params = {k: v for k, v in self.current(date).items() if k not in RUNNER_KEYS}
        runner_reads = {key: self.section.get(key, MISSING) for key in RUNNER_KEYS}
        return StepCall(self.task, self.section["fn"], self.inputs, params, self.outputs(date), runner_reads,
                        self.root)


def plan(cfg: Config) -> list[Step]:
    """Plan every pipeline's steps from the config, checking each section before anything runs."""
    steps = []
    date = None
    base = env_dir(cfg)
    outputs_root = str(base.parent)
    allowed = (*DEFAULT_STEP_MODULES, *settings(cfg.root).get("step_modules", []))
    for pipeline, pipeline_cfg in cfg.pipelines.items():
        where = Where(f"pipelines.{pipeline}", cfg.pipeline_files.get(pipeline), cfg.root)
        sections = _step_sections(pipeline_cfg or {}, where)
        folder = f"{base}/{pipeline}"
        for name, section in sections.items():
            kind = STEP_KINDS[name]
            inputs = _inputs(kind, sections, section, folder, where, name)
            source = _source_file(section["fn"], where, name, cfg.root, allowed)
            if kind.dated and date is None:
                date = check_date(cfg.values.get("date"), "date")
            steps.append(Step(kind, pipeline, section, inputs, f"{folder}/{name}", source, date, outputs_root))
    order = {name: index for index, name in enumerate(STEP_KINDS)}
    return sorted(steps, key=lambda s: (order[s.kind.name], s.pipeline))


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
    file: Path | None = None
    root: Path | None = None

    def __truediv__(self, part: str) -> "Where":
        return Where(f"{self.key}.{part}", self.file, self.root)

    def __str__(self) -> str:
        if self.file is None or self.root is None:
            return self.key
        return f"{self.key} (in {self.file.relative_to(self.root)})"


class _LazyWhere:
    """A Where whose key is joined only if an error message needs it (planning makes thousands)."""

    def __init__(self, base: Where, parts: tuple[str, ...]) -> None:
        self.base, self.parts = base, parts

    def __truediv__(self, part: str) -> "_LazyWhere":
        return _LazyWhere(self.base, (*self.parts, part))

    def __str__(self) -> str:
        where = self.base
        for part in self.parts:
            where = where / part
        return str(where)


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


def _inputs(kind: StepKind, sections: dict[str, Any], section: dict[str, Any], folder: str,
            pipeline: Where, name: str) -> dict[str, str]:
    where = _LazyWhere(pipeline, (name,))
    inputs = {}
    for need in kind.needs:
        if need not in sections:
            raise ConfigError(f"{where}: {kind.name} needs the outputs of {need}; "
                              f"add a {need} section to this pipeline")
        needed = STEP_KINDS[need]
        inputs.update({name: f"{folder}/{need}/{file}" for name, file in needed.outputs.items()})
    extra = section.get("inputs") or {}
    if not isinstance(extra, dict) or not all(isinstance(p, str) for p in extra.values()):
        raise ConfigError(f"{where / 'inputs'}: must map input names to file paths")
    return {**inputs, **extra}


def _source_file(dotted: str, pipeline: Where, name: str, root: Path, allowed: tuple[str, ...]) -> str:
    module, _, function = dotted.rpartition(".")
    where = _LazyWhere(pipeline, (name, "fn"))
    origin, defined = _module_functions(module)
    shown = _shown_path(origin, root) if origin else ""
    local = bool(shown) and not os.path.isabs(shown)
    if not local and not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed):
        raise ConfigError(f"{where}: step functions may come only from this project's modules and "
                          f"{', '.join(allowed)}, not '{module}'; to allow it, add it to "
                          "[tool.mlops] step_modules in pyproject.toml")
    if origin is None:
        raise ConfigError(f"{where}: no Python module '{module}' to take '{function}' from")
    if function not in defined:
        choices = ", ".join(sorted(n for n in defined if not n.startswith("_")))
        raise ConfigError(f"{where}: module '{module}' defines no function '{function}'; "
                          f"choose one of: {choices}")
    return shown


@functools.cache
def _shown_path(origin: str, root: Path) -> str:
    source, root = Path(origin).resolve(), root.resolve()
    # Inside the project, a relative path keeps doit's state valid when the project folder moves.
    return str(source.relative_to(root)) if source.is_relative_to(root) else str(source)


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


def _creator(kind: StepKind, steps: list[Step], digests: DigestCache) -> Callable[[], Iterator[dict[str, Any]]]:
    def create() -> Iterator[dict[str, Any]]:
        yield {"basename": kind.name, "name": None, "doc": kind.doc}
        for step in steps:
            yield dated_task(step, digests) if kind.dated else step_task(step, digests)
    create.__doc__ = kind.doc
    return create


def step_task(step: Step, digests: DigestCache) -> dict[str, Any]:
    """Return the doit subtask of one step: inputs and code in, outputs out, rerun when a read value changed."""
    targets = list(step.outputs().values())
    check = ReadsUnchanged(step, digests)
    return {
        "name": step.pipeline,
        "doc": f"{step.kind.name} {step.pipeline} with {step.section['fn']}",
        "actions": [StepAction(step, check).run],
        "file_dep": [*step.inputs.values(), step.source],
        "targets": targets,
        "uptodate": [check.check],
        "clean": [(clean_outputs, [targets, step.root])],
        "meta": {"source": step.source},
    }


class StepAction:
    """A step's doit action: take the task's lock, skip if another run made it meanwhile, else run it."""

    def __init__(self, step: Step, check: ReadsUnchanged) -> None:
        self.step = step
        self.check = check

    def run(self, task: Any) -> TaskFailed | None:
        """Run the step and keep what it read in doit's state (as task values, not also as its result)."""
        with locked(self.step.locks, task.name):
            made = made_meanwhile(task, lambda values: not self.check.explain(values))
            if made is not None:
                task.values.update(made)
                return None
            call = self.step.call()
            result = run_step(call)
            if isinstance(result, TaskFailed):
                return result
            task.values.update(result, outputs=output_stamps(call.outputs.values(), self.check.digests))
            return None


@contextmanager
def locked(folder: Path, task_name: str) -> Iterator[None]:
    """Hold the task's lock while it runs, and on until doit has saved its record (where possible)."""
    lock = TaskLock(folder, task_name)
    lock.acquire()
    backend = getattr(Globals.dep_manager, "backend", None)
    try:
        yield
    finally:
        # Released after the save, another run waiting for this task finds its record when it wakes.
        if not (isinstance(backend, StateDB) and backend.hold_until_saved(task_name, lock.release)):
            lock.release()


def made_meanwhile(task: Any, values_current: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """Return the values another run saved for this task since doit checked it, if they are current."""
    manager = Globals.dep_manager
    backend = getattr(manager, "backend", None)
    if not isinstance(backend, StateDB) or not backend.changed_by_others():
        return None
    record = read_state(backend.name, backend.journal).get(task.name)
    if not record or not values_current(record.get("_values_:") or {}):
        return None
    for dep in task.file_dep:
        state = record.get(dep)
        if state is None or not os.path.exists(dep) or manager.checker.check_modified(dep, os.stat(dep), state):
            return None
    if not all(os.path.exists(target) for target in task.targets):
        return None
    print(f"mlops: {task.name} was made by another run meanwhile; it is up to date", file=sys.stderr)
    return record.get("_values_:") or {}


def clean_outputs(paths: list[str], root: str) -> None:
    """Delete these outputs, refusing any whose real location is outside the outputs root."""
    for path in paths:
        if not inside(path, root):
            print(f"mlops: not deleting {path}: it resolves outside {root}/", file=sys.stderr)
        elif os.path.lexists(path):
            os.unlink(path)


def output_stamps(paths: Iterable[str], digests: DigestCache) -> dict[str, list[Any]]:
    """Return (mtime_ns, size, digest) of each output as written, to notice later edits by hand."""
    stamps = {}
    for path in paths:
        info = os.stat(path)
        # Through the cache: the downstream step's file check then finds this digest instead of hashing again.
        stamps[path] = [info.st_mtime_ns, info.st_size, digests.digest(path, info)]
    return stamps


def edited_outputs(stamps: dict[str, list[Any]], digests: DigestCache) -> list[str]:
    """Return a reason for each output whose content is no longer what the step wrote."""
    reasons = []
    for path, (mtime_ns, size, digest) in stamps.items():
        try:
            info = os.stat(path)
        except FileNotFoundError:
            continue  # doit reports a missing target itself
        if [info.st_mtime_ns, info.st_size] != [mtime_ns, size] and digests.digest(path, info) != digest:
            reasons.append(f"output changed since the step made it: {path}")
    return reasons


class UpToDate:
    """A doit up-to-date check that can also say, one line per reason, why a step must run."""

    def __init__(self, step: Step, digests: DigestCache) -> None:
        self.step = step
        self.digests = digests

    def check(self, task: Any, values: dict[str, Any]) -> bool:
        """Say whether the step is up to date as far as this check can tell."""
        return not self.explain(values, task)

    def explain(self, values: dict[str, Any], task: Any = None) -> list[str]:
        raise NotImplementedError


class ReadsUnchanged(UpToDate):
    """Every config value the step read last time still has that value, and its outputs are as written."""

    def __repr__(self) -> str:
        return "the config values this step read, and its outputs as it wrote them"

    def explain(self, values: dict[str, Any], task: Any = None) -> list[str]:
        """Return one line per reason the step's config or an edited output makes it run."""
        reasons = config_reasons(self.step, values.get("reads"), self.step.current())
        return reasons + edited_outputs(values.get("outputs", {}), self.digests)


def config_reasons(step: Step, reads: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Describe each recorded read whose value changed, secrets masked; no record means never run."""
    if reads is None:
        return ["no record of a successful run"]
    prefix = f"pipelines.{step.pipeline}.{step.kind.name}"
    return [f"config {prefix}.{key}: {_shown(key, old)} -> {_shown(key, new)}"
            for key, old, new in changes(reads, current)]


def _shown(key: str, value: Any) -> str:
    if value == MISSING:
        return "(absent)"
    if isinstance(value, dict) and SECRET_DIGEST in value:
        return json.dumps(MASK)
    return json.dumps(masked(value, secret_path(key.split("."))))


def dated_task(step: Step, digests: DigestCache) -> dict[str, Any]:
    """Return the subtask of a dated step: one output per date, each date up to date on its own."""
    dated = DatedStep(step, digests)
    return {
        "name": step.pipeline,
        "doc": f"{step.kind.name} {step.pipeline} with {step.section['fn']} for one date",
        "actions": [dated.run],
        "file_dep": [*step.inputs.values(), step.source],
        "targets": list(step.outputs(step.date).values()),
        "uptodate": [dated.check],
        "params": [{"name": "date", "long": "date", "type": str, "default": step.date,
                    "help": "day to forecast, YYYY-MM-DD (default: the config's date, %(default)s)"}],
        "clean": [dated.clean],
        "meta": {"source": step.source},
    }


class DatedStep(UpToDate):
    """Up-to-date check and action of a dated step: doit's state keeps, per date, what made its output."""

    def __repr__(self) -> str:
        return "the output for this date, from the current config values and inputs"

    def explain(self, values: dict[str, Any], task: Any = None) -> list[str]:
        """Return one line per reason the output for the task's date must be made again."""
        date = self._date(task)
        if not DATE.match(str(date)):
            return [f"--date {date} is not a date"]
        # The date option picks the target: doit's missing-target check then looks at that file.
        if task is not None:
            task.targets = list(self.step.outputs(date).values())
        made = values.get("dates", {}).get(date)
        if made is None:
            return [f"no forecast made for {date} yet"]
        reasons = config_reasons(self.step, made.get("reads"), self.step.current(date))
        files = self.files()
        reasons += [f"input changed since {date} was made: {path}"
                     for path, digest in sorted(made.get("files", {}).items()) if files.get(path) != digest]
        return reasons + edited_outputs(made.get("outputs", {}), self.digests)

    def files(self) -> dict[str, str]:
        """Return the digest of each input file and of the step's code (empty if missing)."""
        paths = [*self.step.inputs.values(), self.step.source]
        return {path: self.digests.digest(path) if os.path.exists(path) else "" for path in paths}

    def run(self, date: str, task: Any) -> TaskFailed | None:
        try:
            check_date(date, "--date")
        except ConfigError as error:
            return TaskFailed(f"{self.step.task}: {error}")
        with locked(self.step.locks, task.name):
            made = made_meanwhile(task, lambda values: not self.explain(values, task))
            if made is not None:
                task.values.update(made)
                return None
            result = run_step(self.step.call(date))
            if isinstance(result, TaskFailed):
                return result
            previous = Globals.dep_manager.get_values(task.name) if Globals.dep_manager else {}
            made = {"reads": result["reads"], "files": self.files(),
                    "outputs": output_stamps(self.step.outputs(date).values(), self.digests)}
            task.values["dates"] = {**previous.get("dates", {}), date: made}
            return None

    def clean(self) -> None:
        paths = [str(path) for file in self.step.kind.outputs.values()
                 for path in Path(self.step.folder).glob(file.format(date="*"))]
        clean_outputs(paths, self.step.root)

    def _date(self, task: Any) -> str:
        return task.options.get("date", self.step.date) if task is not None and task.options else self.step.date


def _print_config_creator(cfg: Config) -> Callable[[], dict[str, Any]]:
    def task_print_config() -> dict[str, Any]:
        """Print the resolved config as YAML, secrets masked (key=value words override it)."""
        return {
            "actions": [(_write_yaml, [cfg])],
            "uptodate": [False],
            "verbosity": 2,
            "meta": {"plain_output": True},
        }
    return task_print_config


def _write_yaml(cfg: Config) -> None:
    sys.stdout.write(cfg.to_yaml())
