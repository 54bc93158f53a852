"""Provenance: beside a step's outputs, `provenance.json` says what made them, when, where and from what.

It holds the doit task (and the sweep variant it belongs to), the config values the step read
(secrets masked), the digest of each input and output, the step function and its code state
(project files by meaning, versions), the project's version and git commit, the start and end
times (UTC), the duration, the host, the process and the executor. A dated step's file holds one
such record per date. It is staged with the outputs and published with them, so it always
describes the outputs beside it; an up-to-date step leaves it as it is.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.common.files import parse_json, project_toml

FILE = "provenance.json"


def facts(task: str, fn: str, date: str | None, inputs: dict[str, str], input_digests: dict[str, str],
          code: dict[str, str], executor: str, variant: str | None = None) -> dict[str, Any]:
    """Return what is known of a step's run before it starts (the runner adds the rest)."""
    return {
        "task": task, "date": date, "fn": fn, "executor": executor, "variant": variant,
        "inputs": {name: {"path": path, "digest": input_digests.get(path, "")} for name, path in inputs.items()},
        "code": code, "project": project(Path.cwd()),
    }


def record(known: dict[str, Any], reads: dict[str, Any], finals: dict[str, str], digested: dict[str, str],
           started: datetime, ended: datetime) -> dict[str, Any]:
    """Return the provenance record of a finished run; `finals` are the outputs' paths by name, `digested`
    their digests by path."""
    return {
        **known,
        "params": reads,
        "outputs": {name: {"path": path, "digest": digested[path]} for name, path in finals.items()},
        "started": started.isoformat(timespec="milliseconds"),
        "ended": ended.isoformat(timespec="milliseconds"),
        "duration_s": round((ended - started).total_seconds(), 3),
        "host": host(),
        "pid": os.getpid(),
    }


def write(folder: Path, path: Path, made: dict[str, Any]) -> None:
    """Write the step folder's provenance, with `made` as its record (per date for a dated step), to `path`,
    the staged file published with the outputs."""
    text = json.dumps(made, indent=2, sort_keys=True)
    if made.get("date") is not None:
        try:
            records = parse_json((folder / FILE).read_text())
        except (OSError, ValueError):
            records = {}
        records = records if isinstance(records, dict) and "task" not in records else {}
        text = json.dumps({**records, made["date"]: made}, indent=2, sort_keys=True)
    path.write_text(text + "\n")


@functools.cache
def host() -> str:
    """Return this machine's name, asked once per process."""
    return socket.gethostname()


def now() -> datetime:
    """Return the time in UTC."""
    return datetime.now(UTC)


@functools.cache
def project(root: Path) -> dict[str, Any]:
    """Return the project's version (pyproject.toml) and git commit ("dirty" when the tree has changes)."""
    version = (project_toml(root).get("project") or {}).get("version")
    return {"version": version, "git": _git(root)}


def _git(root: Path) -> dict[str, Any] | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        changes = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None  # no git, or not a repository
    return {"commit": commit, "dirty": bool(changes)}
