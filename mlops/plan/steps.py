"""Plan every pipeline's steps from the config, checking each section before anything runs."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.common.errors import ConfigError
from mlops.common.files import settings
from mlops.common.names import IDENTIFIER, PLAIN_NAME, check_date
from mlops.common.secrets import holds_secret
from mlops.config.model import PIPELINES, Config
from mlops.plan.functions import DEFAULT_STEP_MODULES, source_file
from mlops.plan.kinds import StepKind, step_kinds
from mlops.plan.where import LazyWhere, Where

RUNNER_KEYS = ("fn", "inputs")  # keys the runner reads for the step; the rest are its parameters
MISSING = {"__mlops_missing__": True}  # what a read of an absent key saw (JSON-safe)


@dataclass(frozen=True)
class StepCall:
    """Everything one run of a step needs, as plain data (it can travel to another process)."""

    task: str
    fn: str
    inputs: dict[str, str]
    params: dict[str, Any]
    outputs: dict[str, str]
    runner_reads: dict[str, Any] = field(default_factory=dict)
    root: str = ""  # if set, every output must resolve inside this folder
    provenance: dict[str, Any] = field(default_factory=dict)  # if set, what is known of the run before it starts


@dataclass(frozen=True)
class Step:
    """One pipeline's step of one kind, as planned from the config."""

    kind: StepKind
    pipeline: str
    section: dict[str, Any]
    inputs: dict[str, str]
    folder: str
    source: str
    env_dir: str
    date: str | None = None  # the config's date, for a dated kind
    variant: str | None = None  # the sweep variant it belongs to (alpha=0.3), if its config is swept
    upstream: tuple[str, ...] = ()  # the tasks of the steps it needs, in the order of its kind's needs

    @property
    def task(self) -> str:
        """Return the doit task name, kind:pipeline (kind:pipeline@variant for a sweep's variant)."""
        return f"{self.kind.name}:{self.name}"

    @property
    def name(self) -> str:
        """Return the doit subtask name: the pipeline, and the variant of a sweep's step (`a@alpha_0.3`:
        doit's task names hold no '=')."""
        return f"{self.pipeline}@{self.variant.replace('=', '_')}" if self.variant else self.pipeline

    @functools.cached_property
    def root(self) -> str:
        """Return the outputs root that every output must stay inside."""
        return str(Path(self.env_dir).parent)

    def outputs(self, date: str | None = None) -> dict[str, str]:
        """Return each output's path, for this date when the step is dated."""
        return {name: f"{self.folder}/{file}" for name, file in self.kind.files(date).items()}

    def current(self, date: str | None = None) -> dict[str, Any]:
        """Return the section as the step sees it now: what its recorded reads are compared with."""
        return {**self.section, "date": date} if self.kind.dated else self.section

    def params(self, date: str | None = None) -> dict[str, Any]:
        """Return the params the step function is handed: its section without the runner's keys."""
        return {k: v for k, v in self.current(date).items() if k not in RUNNER_KEYS}

    def runner_reads(self) -> dict[str, Any]:
        """Return what the runner reads of the section for the step (its fn and extra inputs)."""
        return {key: self.section.get(key, MISSING) for key in RUNNER_KEYS}

    def input_origin(self, name: str) -> str:
        """Say where input `name` comes from: the config key that names it, or the step that makes it."""
        if name in (self.section.get("inputs") or {}):
            return f"{PIPELINES}.{self.pipeline}.{self.kind.name}.inputs.{name}"
        return next((f"the output of {need}:{self.pipeline}" for need in self.kind.needs), "a step it needs")

    def missing_inputs(self) -> list[str]:
        """Return one line per input file that does not exist, naming where it comes from."""
        return [f"input '{name}' is {'not a file' if os.path.exists(path) else 'missing'}: {path} "
                f"({self.input_origin(name)})" for name, path in self.inputs.items() if not os.path.isfile(path)]

    def call(self, date: str | None = None) -> StepCall:
        """Return the call that runs this step (for `date`, when it is dated)."""
        return StepCall(self.task, self.section["fn"], self.inputs, self.params(date), self.outputs(date),
                        self.runner_reads(), self.root)


def env_dir(cfg: Config) -> Path:
    """Return the folder of this env option's outputs and state, checked to stay inside the project."""
    root = str(cfg.get("paths.root", "outputs"))
    unsafe = (not root or os.path.isabs(root) or ".." in Path(root).parts or
              any(char in root for char in "\0\n\r"))
    if unsafe:
        raise ConfigError(f"paths.root: {root[:80]!r} must be a relative folder inside the project, such as outputs")
    if not PLAIN_NAME.match(cfg.env):
        raise ConfigError(f"env={cfg.env[:80]!r}: an env option name must be a plain name (letters, digits, _ -)")
    return Path(root) / cfg.env


def plan(cfg: Config, kinds: dict[str, StepKind] | None = None) -> list[Step]:
    """Return every pipeline's steps, upstream kinds first, checking each section (kinds: as declared)."""
    kinds = step_kinds(cfg.values) if kinds is None else kinds
    base = env_dir(cfg)
    allowed = (*DEFAULT_STEP_MODULES, *settings(cfg.root).get("step_modules", []))
    date = check_date(cfg.get("date"), "date") if any(kind.dated for kind in kinds.values()) else None
    steps = []
    for pipeline, pipeline_cfg in cfg.pipelines.items():
        where = Where(f"{PIPELINES}.{pipeline}", cfg.pipeline_files.get(pipeline), cfg.root)
        if not IDENTIFIER.match(str(pipeline)):
            raise ConfigError(f"{where}: a pipeline name must be a plain identifier (letters, digits, _)")
        sections = _step_sections(pipeline_cfg or {}, where, kinds)
        folder = f"{base}/{pipeline}"
        for name, section in sections.items():
            kind = kinds[name]
            inputs = _inputs(kind, kinds, sections, folder, LazyWhere(where, (name,)))
            source = source_file(section["fn"], LazyWhere(where, (name, "fn")), cfg.root, allowed)
            upstream = tuple(f"{need}:{pipeline}" for need in kind.needs)
            steps.append(Step(kind, pipeline, section, inputs, f"{folder}/{name}", source, str(base),
                              date if kind.dated else None, upstream=upstream))
    order = {name: index for index, name in enumerate(kinds)}
    return sorted(steps, key=lambda step: (order[step.kind.name], step.pipeline))


def check_task_words(words: Iterable[str], kinds: Iterable[str], steps: list[Step],
                     groups: Iterable[str] = ()) -> None:
    """Fail on a `kind:pipeline` word naming no planned step (nor a swept step's `groups` of variants),
    listing the pipelines that have that kind."""
    planned = {step.task for step in steps} | set(groups)
    known = set(kinds)
    for word in words:
        kind, colon, _ = word.partition(":")
        wildcard = any(char in word for char in "*?[")  # doit matches these itself
        if colon and kind in known and "=" not in word and not wildcard and word not in planned:
            having = sorted({step.pipeline for step in steps if step.kind.name == kind})
            choices = ", ".join(having) if having else "no pipeline has one yet"
            raise ConfigError(f"{word}: no such task; pipelines with a {kind} step: {choices}")


def _step_sections(pipeline_cfg: Any, where: Where, kinds: dict[str, StepKind]) -> dict[str, dict[str, Any]]:
    if not isinstance(pipeline_cfg, dict):
        raise ConfigError(f"{where}: must be a mapping of step names to parameters")
    sections = {}
    for key, value in pipeline_cfg.items():
        is_step = isinstance(value, dict) and "fn" in value
        if key in kinds:
            if not is_step:
                raise ConfigError(f"{where / key}: a step needs `fn: package.module.function` "
                                  "naming the function that does it")
            if not isinstance(value["fn"], str) or "." not in value["fn"]:
                raise ConfigError(f"{where / key / 'fn'}: '{value['fn']}' is not a dotted function path "
                                  "such as mlops.pipelines.demand.prepare")
            sections[key] = value
        elif is_step:
            raise ConfigError(f"{where / key}: '{key}' is not a step kind; choose one of: {', '.join(kinds)}")
    return sections


def _inputs(kind: StepKind, kinds: dict[str, StepKind], sections: dict[str, Any], folder: str,
            where: LazyWhere) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for need in kind.needs:
        if need not in sections:
            raise ConfigError(f"{where}: {kind.name} needs the outputs of {need}; "
                              f"add a {need} section to this pipeline")
        for name, file in kinds[need].outputs.items():
            if name in inputs:
                raise ConfigError(f"steps.{need}.outputs.{name}: {kind.name} also reads an output '{name}' of "
                                  "another kind it needs; give the outputs different names")
            inputs[name] = f"{folder}/{need}/{file}"
    extra = sections[kind.name].get("inputs") or {}
    if not isinstance(extra, dict) or not all(isinstance(path, str) for path in extra.values()):
        raise ConfigError(f"{where / 'inputs'}: must map input names to file paths")
    shown = sorted(name for name, path in extra.items() if holds_secret(path))
    if shown:
        raise ConfigError(f"{where / 'inputs' / shown[0]}: the path holds a secret value, and paths are recorded and "
                          "shown (state, provenance, messages); name the file without it")
    taken = sorted(set(extra) & set(inputs))
    if taken:
        raise ConfigError(f"{where / 'inputs' / taken[0]}: '{taken[0]}' is already the output of a step "
                          f"{kind.name} needs; name this input otherwise")
    return {**inputs, **extra}
