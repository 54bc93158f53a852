"""The tracking outbox: one event per step result, kept in the env's folder until a logger has sent it to MLflow.

Nothing here imports MLflow: a command only writes events; `integrations.logger` sends them.

An event is written by the process that made the result, right after the step's outputs were published and
before its record is saved in the state (`<id>.made.json`), and marked saved once the record is
(`<id>.json`). So a stop at any point loses nothing: an event whose record was saved is sent, even if the mark
was never made (the logger finds the record in the state, or a later event of the same step that replaced
it); an event whose record never was is dropped, as its result will be made again. The files an event logs
(the step's and its upstream's provenance, its metrics and artifacts) are hard links made with it: a later
run that replaces an output gives it a new file, and the event keeps the content it describes.

An event belongs to a lineage: the pipeline (and sweep variant) in one env with the configuration of all its
steps (each step kind's section, dates aside). Every step of one lineage logs into one MLflow run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops.common import secrets
from mlops.common.canonical import canonical
from mlops.common.files import parse_json, write_atomically
from mlops.plan import Step
from mlops.run import provenance

FOLDER = ".tracking"  # in the env's folder
MADE, SAVED = ".made.json", ".json"
LOCK = "logger.lock"
LOG = "logger.log"


def folder_of(env_dir: str | os.PathLike[str]) -> Path:
    """Return the outbox folder of an env's folder."""
    return Path(env_dir) / FOLDER


class Writer:
    """Writes the events of one command's results: knows its steps, by task and by lineage."""

    def __init__(self, steps: dict[str, Step], env: str) -> None:
        self.steps = steps
        self.env = env
        self._groups: dict[tuple[str, str | None], list[Step]] = {}
        for step in steps.values():
            self._groups.setdefault((step.pipeline, step.variant), []).append(step)
        self._keys: dict[tuple[str, str | None], str] = {}

    def lineage(self, step: Step) -> str:
        """Return the key of a step's lineage: a keyed digest of the env, pipeline, variant and the sections of
        the lineage's steps (those of its pipeline and variant, and all upstream of them), dates aside. A key of
        values that may be secret is a keyed digest, never plain."""
        group = (step.pipeline, step.variant)
        if group not in self._keys:
            tasks = {item.task for item in self._groups[group]}
            for item in self._groups[group]:
                tasks |= self._upstream(item)
            sections = {self.steps[task].kind.name: {key: value for key, value in self.steps[task].section.items()
                                                     if key != "date"} for task in sorted(tasks)}
            text = canonical({"env": self.env, "pipeline": step.pipeline, "variant": step.variant,
                              "sections": sections})
            self._keys[group] = secrets.digest(text.encode())[:32]
        return self._keys[group]

    def write(self, step: Step, date: str | None, made: dict[str, Any], previous: str | None,
              state: dict[str, Any], owner: int) -> None:
        """Write the event of a result just made, before its record is saved (see the module's doc).

        `state` says where the record is saved (the state's files, and the path of keys to the record's id);
        `owner` is the process that saves it."""
        event_id = str(made["id"])
        outbox = folder_of(step.env_dir)
        outputs = step.outputs(date)
        where = f"{step.kind.name}/{date}" if date else step.kind.name

        def link(source: str | os.PathLike[str], name: str) -> str | None:
            return _link(source, outbox, f"{event_id}/{name}")

        above = [self.steps[task] for task in sorted(self._upstream(step)) if not self.steps[task].kind.dated]
        upstream = [{"kind": item.kind.name,
                     "provenance": link(Path(item.folder) / provenance.FILE, f"{item.kind.name}/{provenance.FILE}")}
                    for item in above]
        event = {
            "id": event_id, "previous": previous, "made_ns": time.time_ns(), "owner": owner, "state": state,
            "task": step.task, "pipeline": step.pipeline, "variant": step.variant, "kind": step.kind.name,
            "date": date, "env": self.env, "lineage": self.lineage(step), "folder": where,
            "provenance": self._record(step, date, outbox, f"{event_id}/{where}/{provenance.FILE}"),
            "upstream": upstream,
            "metrics": [link(outputs[name], f"{where}/{Path(outputs[name]).name}") for name in step.kind.metrics],
            "artifacts": [link(outputs[name], f"{where}/{Path(outputs[name]).name}")
                          for name in step.kind.artifacts],
        }
        write_atomically(outbox / f"{event_id}{MADE}", json.dumps(event))

    def _record(self, step: Step, date: str | None, outbox: Path, name: str) -> str | None:
        """Keep the step's provenance record in the event's folder as `name`: linked, or for a dated step (whose
        file holds a record per date) its date's record written out. None if there is none."""
        source = Path(step.folder) / provenance.FILE
        if date is None:
            return _link(source, outbox, name)
        try:
            records = parse_json(source.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(records, dict) or not isinstance(records.get(date), dict):
            return None
        write_atomically(outbox / name, json.dumps(records[date], indent=2, sort_keys=True) + "\n")
        return name

    def _upstream(self, step: Step) -> set[str]:
        found: set[str] = set()
        todo = list(step.upstream)
        while todo:
            task = todo.pop()
            if task not in found and task in self.steps:
                found.add(task)
                todo.extend(self.steps[task].upstream)
        return found


def saved(env_dir: str | os.PathLike[str], event_id: str) -> None:
    """Mark an event's record saved (missing: the logger decides from the state)."""
    outbox = folder_of(env_dir)
    with contextlib.suppress(FileNotFoundError):  # sent already: a logger found its record in the state
        os.replace(outbox / f"{event_id}{MADE}", outbox / f"{event_id}{SAVED}")


def events(outbox: Path) -> list[dict[str, Any]]:
    """Return the events in an outbox, oldest first, each with `saved` (marked) and `file` (its path)."""
    found = []
    for path in _event_files(outbox):
        try:
            event = parse_json(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced by its mark, or not ours
        if isinstance(event, dict) and isinstance(event.get("id"), str):
            event["saved"], event["file"] = not path.name.endswith(MADE), str(path)
            found.append(event)
    return sorted(found, key=lambda event: (event.get("made_ns") or 0, event["id"]))


def count(outbox: Path) -> int:
    """Return how many events wait in an outbox."""
    return sum(1 for _ in _event_files(outbox))


def remove(outbox: Path, event: dict[str, Any]) -> None:
    """Remove an event and its files (the event file first: a stop between leaves only unreferenced files)."""
    for name in (f"{event['id']}{SAVED}", f"{event['id']}{MADE}"):
        (outbox / name).unlink(missing_ok=True)
    shutil.rmtree(outbox / event["id"], ignore_errors=True)


def _event_files(outbox: Path) -> Iterator[Path]:
    try:
        names = os.listdir(outbox)
    except OSError:
        return
    for name in names:
        if name.endswith(SAVED) and not name.startswith("."):
            yield outbox / name


def _link(source: str | os.PathLike[str], outbox: Path, name: str) -> str | None:
    """Hard-link a file into an event's folder as `name` (relative to the outbox; a copy where links cannot be
    made) and return that name, None if the file is missing."""
    target = outbox / name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except FileExistsError:
        pass
    except FileNotFoundError:
        return None
    except OSError:  # another file system, or one without links
        try:
            shutil.copyfile(source, target)
        except OSError:
            return None
    return name
