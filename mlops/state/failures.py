"""Why each step's last run failed, one line per date, kept beside the state until it succeeds.

A failure publishes no output, so the records still describe the outputs on disk and stay
(every date's, for a dated step); the step's check reruns a step while its failure is noted,
saying why.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import urllib.parse
from pathlib import Path

from mlops.common import identity
from mlops.common.files import parse_json, write_atomically

FOLDER = ".failed"


class Failures:
    """One file per failed task: {date or "": the one-line reason}."""

    def __init__(self, env_dir: str | os.PathLike[str]) -> None:
        self.folder = Path(env_dir) / FOLDER
        self._listed: set[str] | None = None  # the folder's files: most steps never failed
        self._listed_at: list[int] | None = None  # the folder's identity when listed (see common.identity)

    @classmethod
    @functools.cache
    def of(cls, env_dir: str) -> Failures:
        """Return this process's failures of `env_dir`: one listing serves every step's check."""
        return cls(env_dir)

    def note(self, task: str, date: str | None, line: str) -> None:
        """Record that `task` failed (for `date`), with its reason in one line."""
        noted = {**self.noted(task), date or "": line}
        with contextlib.suppress(OSError):  # a folder we cannot write: the failure is still reported
            write_atomically(self._file(task), json.dumps(noted))
            self._files().add(_name(task))

    def clear(self, task: str, date: str | None) -> None:
        """Forget the failure of `task` (for `date`) after it succeeded (noted by any run until now)."""
        noted = self.noted(task)
        if (date or "") not in noted:
            return
        del noted[date or ""]
        with contextlib.suppress(OSError):
            if noted:
                write_atomically(self._file(task), json.dumps(noted))
            else:
                os.remove(self._file(task))

    def noted(self, task: str) -> dict[str, str]:
        """Return the noted failures of `task`, by date ("" for an undated step)."""
        listed = self._files()
        if not listed or _name(task) not in listed:  # a stat-free answer for the usual case: nothing failed
            return {}
        return self._read(task)

    def _read(self, task: str) -> dict[str, str]:
        try:
            noted = parse_json(self._file(task).read_text())
        except (OSError, ValueError):
            return {}
        return {str(key): str(value) for key, value in noted.items()} if isinstance(noted, dict) else {}

    def _files(self) -> set[str]:
        if self._listed is None or not identity.same(self._listed_at, identity.current(self.folder)):
            # listed again once another run noted one (its folder changed)
            self._listed_at = identity.record(self.folder)
            try:
                self._listed = set(os.listdir(self.folder))
            except OSError:
                self._listed = set()
        return self._listed

    def _file(self, task: str) -> Path:
        return self.folder / _name(task)


def _name(task: str) -> str:
    """Return the file name of a task's noted failures (any task name is a safe file name this way)."""
    return urllib.parse.quote(task, safe="") + ".json"
