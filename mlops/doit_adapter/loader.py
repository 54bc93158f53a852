"""The `mlops` task loader plugin: doit's dodo.py loader, checking the command's task words first."""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Iterable
from typing import Any

from doit.cmd_base import DodoTaskLoader

from mlops.common.errors import ConfigError, MlopsError
from mlops.doit_adapter import backend as backend_plugin
from mlops.doit_adapter import internals, noop, session
from mlops.doit_adapter.reporter import QuietPipe, Reporter
from mlops.doit_adapter.tasks import KIND_MARK, date_value, takes_date
from mlops.run import bytecode, signals
from mlops.run.runner import inside

NAME = "mlops"
TASK_COMMANDS = frozenset({"run", "list", "info", "clean", "forget", "ignore", "graph"})  # their words name tasks
PRINTING = frozenset({"list", "why", "dumpdb", "info", "clean", "graph"})  # commands that run no step (no network)
PLUGIN = "mlops.doit_adapter.loader:Loader"


class Loader(DodoTaskLoader):  # type: ignore[misc]
    """Load dodo.py as doit does; a task word naming no planned step fails in one line."""

    def __init__(self) -> None:
        # doit makes its loader before anything else of ours runs: from here on, Ctrl-C and SIGTERM stop the
        # command with one line (composing the config, importing dodo.py), never with a traceback; and dodo.py
        # and the project modules it imports run as their source reads now, whatever their bytecode cache says.
        signals.install()
        bytecode.guard_imports()
        super().__init__()

    def setup(self, opt_values: Any) -> None:
        """Import dodo.py, as doit does, telling it that this loader reads it."""
        session.LOADER_ACTIVE.append(True)
        self.options = opt_values  # with DOIT_CONFIG's defaults merged in by the time tasks load
        super().setup(opt_values)

    def load_doit_config(self) -> dict[str, Any]:
        """Return dodo.py's DOIT_CONFIG, after checking that the state file the run will open can be opened."""
        config: dict[str, Any] = super().load_doit_config()
        try:
            backend, state = (internals.run_option(self.options, config, name) for name in ("backend", "dep_file"))
            check_state_file(backend, state, default=config.get("dep_file"))
        except MlopsError as error:
            sys.exit(f"mlops: error: {error}")
        return config

    def load_tasks(self, cmd: Any, pos_args: list[str]) -> Any:
        """Check `pos_args` (task names, as doit parsed them), then create the tasks."""
        session.COMMAND.append(getattr(cmd, "name", ""))
        if getattr(cmd, "name", "") in PRINTING:
            # Like any Unix filter: end quietly when the reader of the output goes away (doit list | head).
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        current = session.current()
        try:
            if current is not None:
                check_kind_names(current.kinds, self.cmd_names, self.namespace)
                current.check(pos_args)
            if current is not None:
                narrow(current, getattr(cmd, "name", ""), pos_args, self.options)
            tasks = super().load_tasks(cmd, pos_args)
            if current is not None:
                creators = {kind: self.namespace[f"task_{kind}"] for kind in current.kinds}
                tasks = current.selection.complete(tasks, creators)
            if current is not None and getattr(cmd, "name", "") in TASK_COMMANDS:
                check_words(pos_args, tasks, _overridden_date(current.command_line.overrides))
            if current is not None:
                current.settle()  # nothing is written until every word proved valid
        except MlopsError as error:
            sys.exit(f"mlops: error: {error}")
        # The config, the plan and the tasks live until the command ends: keep the cyclic garbage
        # collector from rescanning them at every collection while the steps run or are checked.
        gc.freeze()
        return tasks


def narrow(current: session.Invocation, command: str, words: list[str], options: Any) -> None:
    """Choose the steps this command makes tasks of; a run that the last no-op's fingerprint answers ends here."""
    if command == "run" and not current.swept:
        current.selection.choose(words, current.kinds)
        answer_no_op(current, words, options)
    elif command == "list" and not words and not options.get("subtasks"):
        current.selection.groups_only()  # what `doit list` shows without --all or task names


def answer_no_op(current: session.Invocation, words: list[str], options: Any) -> None:
    """End the command with the last no-op's lines if its fingerprint still holds; else note the fingerprint
    this run writes if it finds nothing to do (see noop)."""
    fingerprint = noop.Fingerprint.of(current, words, dict(options), Reporter)
    if fingerprint is None:
        return
    saved = fingerprint.saved()
    lines = fingerprint.answers(saved) if saved is not None else None
    if lines is None:
        noop.CURRENT.append(fingerprint)
        noop.KNOWN.update(saved["steps"] if saved is not None else {})
        return
    current.settle()
    out = QuietPipe(sys.stdout)
    out.write("".join(lines))
    out.flush()
    sys.exit(0)


def check_state_file(backend: Any, state: Any, default: Any = None) -> None:
    """Fail in one line when a state file given with --db-file is in a folder outside the project that does not
    exist (one inside it is made, as the outputs are), or when another backend is asked to open a state file ours
    wrote (JSON): doit would stop with a traceback, after running a step."""
    state = str(state or "")
    folder = os.path.abspath(os.path.dirname(state) or ".")
    if state != str(default or "") and not os.path.isdir(folder) and not inside(folder, os.getcwd()):
        raise ConfigError(f"--db-file {state}: the folder {folder} does not exist; create it, or name a file in a "
                          "folder that does")
    if backend in (None, backend_plugin.NAME, "json") or not os.path.isfile(state):
        return
    with open(state, "rb") as handle:
        if handle.read(1) == b"{":
            raise ConfigError(f"--backend {backend}: {state} was written by the {backend_plugin.NAME} backend, "
                              f"which {backend} cannot read; leave --backend out, or give {backend} a state file of "
                              "its own with --db-file")


def check_kind_names(kinds: Iterable[str], commands: Iterable[str], namespace: dict[str, Any]) -> None:
    """Fail on a step kind named like a doit command or like another task of dodo.py."""
    for name in kinds:
        if name in commands:
            raise ConfigError(f"steps.{name}: '{name}' is a doit command; give the step kind another name")
        if getattr(namespace.get(f"task_{name}"), KIND_MARK, None) != name:
            raise ConfigError(f"steps.{name}: dodo.py already has a task '{name}'; give the step kind another name")


def check_words(words: list[str], tasks: list[Any], date: str | None) -> None:
    """Fail on a word naming no task (with the choices), and on a `--date` that no dated task takes or
    that disagrees with `date=` on the same command line."""
    names = {task.name for task in tasks}
    dated = {task.name for task in tasks if takes_date(task)}
    previous, rest = "", iter(words)
    for word in rest:
        value = date_value(word, rest)
        if value is not None:
            if previous not in dated:
                example = min(dated, default="predict:<pipeline>")
                raise ConfigError(f"--date {value}: only a dated step's task takes it (such as {example}); "
                                  f"for every pipeline, write date={value}")
            if date is not None and value != date:
                raise ConfigError(f"date={date} and --date {value} disagree; give the day once")
        elif word in names or word.startswith("-") or any(char in word for char in "*?["):
            previous = word
        else:
            groups = sorted(name for name in names if ":" not in name)
            raise ConfigError(f"{word}: no such task; choose one of: {', '.join(groups)} (doit list --all shows each)")


def _overridden_date(overrides: Iterable[str]) -> str | None:
    """Return the day a `date=` word sets on the command line, if any (the last one wins, as in Hydra)."""
    found = None
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+") == "date":
            found = value
    return found
