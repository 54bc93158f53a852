"""A no-op told from a fingerprint of what the last no-op's verdicts depended on, without building the tasks.

doit builds and checks every task before it can say that nothing is to do: at a thousand pipelines,
4000 task objects and their checks. After a `doit` run in which every task it reached was up to date
(nothing ran, failed or was ignored), this module writes the run's fingerprint beside the state:

- the command: its task words, its overrides, its run options, a digest of the resolved config, the
  interpreter and the folders it imports from (sys.path);
- the identities (`common.identity`) of what the verdicts depend on, listed from the steps' records, not
  from what this process happened to read: the state store's files and the folder of noted failures, every
  input and output each record names, the code files each record names and the folders those are in, the
  folders Python imports from (an install changes them), the dodo file and the project's modules it
  imported, pyproject.toml and mlops's code;
- what the run printed: the `--` line of each task, in order.

The next `doit` with the same words and config looks at those files; when every identity is the same,
every verdict would be the same, so it prints those lines and ends. When only some steps' inputs or
outputs differ (a data file changed), doit checks every task, but a step whose own files are as they were
is up to date without our check of its record (`still_up_to_date`); any other difference, and every step
is checked as usual. A run that cannot list what a verdict depends on (a step without a record, a state
store of another backend) writes no fingerprint, and neither does one during which a file it lists
changed (an identity racy with the run's start: a check may have seen the file either way).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from mlops.common import identity, secrets
from mlops.common.canonical import canonical
from mlops.common.files import parse_json, write_atomically
from mlops.doit_adapter import internals
from mlops.doit_adapter.session import Invocation
from mlops.plan import Step
from mlops.run.locations import search_folders, version_sources
from mlops.run.uptodate import CODE_SUFFIXES, made_for
from mlops.state.failures import FOLDER as FAILURES
from mlops.state.store import StateDB

FOLDER = ".noop"  # one fingerprint per command (task words and overrides)
KEEP = 16
FORMAT = 3
SPECIAL_RUN = ("always", "single", "pdb")  # run options under which a no-op would not print the same
# Run options a verdict or what is printed depends on (the state file, the dodo file, how results show).
KEYED_OPTIONS = ("dep_file", "backend", "codec_cls", "check_file_uptodate", "dodoFile", "cwdPath", "seek_file",
                 "verbosity", "failure_verbosity", "continue", "num_process", "par_type", "auto_delayed_regex")


class Fingerprint:
    """The fingerprint of one `doit` run's no-op: checked before the tasks are made, written after the run."""

    def __init__(self, started: Invocation, words: list[str], options: dict[str, Any]) -> None:
        self.started = started
        self.dodo = str(Path(str(options.get("dodoFile") or "dodo.py")).resolve())
        self.words, self.options = words, {name: str(options.get(name)) for name in KEYED_OPTIONS}
        self.begun = identity.now()
        self.printed: list[str] = []
        self.spoiled = False  # something ran, failed or was ignored: this run was no no-op

    @functools.cached_property
    def path(self) -> Path:
        """Return the fingerprint's file (its name a keyed digest of the command, which may hold a secret)."""
        command = json.dumps([self.words, list(self.started.command_line.overrides)])
        return self.started.config.root / self.started.env_dir / FOLDER / f"{_digest(command)[:24]}.json"

    @functools.cached_property
    def key(self) -> str:
        """Return what the fingerprint is for (made only when one is read or written: it digests the config)."""
        return _key(self.started, self.words, self.options)

    @classmethod
    def of(cls, started: Invocation | None, words: list[str], options: dict[str, Any],
           reporter: Any) -> Fingerprint | None:
        """Return the fingerprint of a `doit run` of named steps or the default tasks, None for any other run
        (a sweep, task options, -a, -s, --pdb, another reporter or output file)."""
        if started is None or started.swept or any(word.startswith("-") for word in words):
            return None
        if any(options.get(name) for name in SPECIAL_RUN):
            return None
        if options.get("reporter") is not reporter or options.get("outfile", sys.stdout) is not sys.stdout:
            return None
        return cls(started, words, options)

    def saved(self) -> dict[str, Any] | None:
        """Return the fingerprint of this command's last no-op, if it was for this config and options and
        what all steps share (the state, the code, the tools) is as it was then."""
        if not secrets.has_key():
            return None  # no fingerprint was written without it (and a bad command makes no key)
        try:
            saved = parse_json(self.path.read_text())
            if not isinstance(saved, dict) or saved.get("key") != self.key or not identity.unchanged(saved["shared"]):
                return None
            if all(isinstance(files, dict) for files in saved["steps"].values()):
                return saved
        except (OSError, ValueError, TypeError, KeyError, AttributeError):  # none, or of another shape
            pass
        return None

    @staticmethod
    def answers(saved: dict[str, Any]) -> list[str] | None:
        """Return the lines the last no-op printed, if every step's files are as they were then, else None."""
        if not all(identity.unchanged(files) for files in saved["steps"].values()):
            return None
        printed = saved.get("printed")
        return printed if isinstance(printed, list) and all(isinstance(line, str) for line in printed) else None

    def saw(self, task: Any, step: bool) -> None:
        """Note a task found up to date, as the reporter printed it; one not a step's (a project's own task,
        with checks of its own) spoils the no-op."""
        self.spoiled = self.spoiled or (bool(task.actions) and not step)
        if task.name[0] != "_":
            self.printed.append(f"-- {task.title()}\n")

    def spoil(self) -> None:
        """Note that a task ran, failed or was ignored, or that the run stopped: this run was no no-op."""
        self.spoiled = True

    def write(self) -> None:
        """Write the fingerprint if this run was a no-op and nothing it depended on changed while it ran."""
        if secrets.has_key():
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)  # whatever the outcome, an older fingerprint is stale now
        if self.spoiled or len(self.printed) != len(self._steps()):  # a run stopped before it saw every step
            return
        try:
            key, watched = self.key, self._watched()
        except ValueError:
            return  # what a verdict depends on cannot be listed: no fingerprint
        shared = {path: identity.record(path, self.begun) for path in sorted(watched.pop(""))}
        steps = {task: {path: identity.record(path, self.begun) for path in files} for task, files in watched.items()}
        if None in shared.values() or any(None in files.values() for files in steps.values()):
            return  # changed while this run was under way
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(exist_ok=True)
            write_atomically(self.path, json.dumps({"key": key, "shared": shared, "steps": steps,
                                                    "printed": self.printed}))
            kept = sorted(self.path.parent.glob("*.json"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
            for old in kept[KEEP:]:
                old.unlink(missing_ok=True)

    def _watched(self) -> dict[str, set[str]]:
        """Return, by step task, the files its verdict depends on besides the shared ones (its inputs and outputs),
        and under "" the shared files: what every step depends on, and each record's code files and their
        folders. ValueError if a step has no record or the state store is not ours."""
        backend = internals.state_backend()
        if not isinstance(backend, StateDB):
            raise ValueError("a state store of another backend")
        root = str(self.started.config.root)  # joined as text: pathlib's parsing is most of this at 4000 steps
        shared = set(self._shared(backend))
        watched: dict[str, set[str]] = {"": shared}
        code: set[str] = set()  # the steps share most of their code: each file's folders are looked up once
        for step in self._steps():
            made = made_for(internals.saved_values(step.task), step.date)
            if made is None:
                raise ValueError(f"{step.task} has no record")
            files = {*step.inputs.values(), *made["files"], *step.outputs(step.date).values(), *made["outputs"]}
            watched[step.task] = {os.path.join(root, path) for path in files}
            code.update(path for path in made["code"] if os.path.splitext(path)[1] in CODE_SUFFIXES)
        code = {os.path.join(root, path) for path in code}
        shared.update(code, (os.path.dirname(path) for path in code))
        shared.update(folder for path in code for folder in search_folders(path))
        return watched

    def _shared(self, backend: StateDB) -> Iterable[str]:
        """Yield every file and folder whose identity the verdicts of all steps depend on, but their code."""
        root, env_dir = self.started.config.root, self.started.config.root / self.started.env_dir
        yield from (os.path.abspath(backend.name), os.path.abspath(backend.journal), str(env_dir / FAILURES))
        yield from (self.dodo, str(root / "pyproject.toml"))
        yield from version_sources()  # the folders Python imports from, and the installed versions
        # mlops itself, and what dodo.py imported from the project (its own tasks may live there).
        project = root.resolve()
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if path and (name.split(".")[0] == "mlops" or Path(path).resolve().is_relative_to(project)):
                yield str(path)

    def _steps(self) -> list[Step]:
        """Return the steps this run reached: the chosen ones, else every step."""
        only = self.started.selection.only
        return [step for step in self.started.steps if only is None or step.task in only]


CURRENT: list[Fingerprint] = []  # the fingerprint this process's run writes, if it is a plain run
KNOWN: dict[str, dict[str, list[int]]] = {}  # by step: its files' identities when the last no-op found it up to date


def still_up_to_date(task: str) -> bool:
    """Say whether a step the last no-op found up to date still is, by its files' identities alone.

    Only once this command's fingerprint proved the shared part the same (config, options, state, code,
    tools: `KNOWN` is empty otherwise), and while no other process has written the state since it was read:
    then the step's record is the one of that no-op, and so is everything it was judged by, if its inputs
    and outputs are. A step that another step of this run remade an input of has another stat."""
    files = KNOWN.get(task)
    if files is None:
        return False
    backend = internals.state_backend()
    if not isinstance(backend, StateDB) or backend.changed_by_others():
        KNOWN.clear()
        return False
    return identity.unchanged(files)


def _key(started: Invocation, words: list[str], options: dict[str, str]) -> str:
    """Return what the fingerprint is for: the command and its options, the config, the interpreter and where
    it imports from, and the tools."""
    config = canonical(started.config.values)
    tools = [FORMAT, sys.executable, platform.python_version(), metadata.version("doit"), sys.path]
    command = [words, list(started.command_line.overrides), str(Path.cwd()), options]
    return _digest(json.dumps([tools, command, config]))


def _digest(text: str) -> str:
    # keyed: the command and the config may hold secrets, which a plain digest would let a guess be checked against
    return secrets.digest(text.encode())
