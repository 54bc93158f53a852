"""The tracking outbox: one event per step result, kept in the env's folder until a logger has sent it to MLflow.

Nothing here imports MLflow: a command only writes events; `integrations.logger` sends them.

An event is written by the process that made the result, right after the step's outputs were published and
before its record is saved in the state (`<id>.made.json`), and marked saved once the record is
(`<id>.json`). So a stop at any point loses nothing: an event whose record was saved is sent, even if the mark
was never made (the logger finds the record in the state, or a later event of the same step that replaced
it); an event whose record never was is dropped, as its result will be made again. The files an event logs
(its metrics and artifacts) are hard links made with it: a later run that replaces an output gives it a new
file, and the event keeps the content it describes. Its provenance record, and what its upstream steps read
(their provenance's function, inputs and values), are copied into the event: a link per record would cost
more than the rest of the event.

An event belongs to a lineage: the pipeline (and sweep variant) in one env with the configuration of all its
steps (each step kind's section, dates aside). Every step of one lineage logs into one MLflow run.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlops.common import secrets
from mlops.common.canonical import canonical
from mlops.common.files import parse_json
from mlops.integrations import event_files
from mlops.plan import Step
from mlops.run import provenance
from mlops.run.uptodate import config_reasons
from mlops.state.digests import stamped_digest
from mlops.state.locks import started

FOLDER = ".tracking"  # in the env's folder
MADE, SAVED, HELD = ".made.json", ".json", ".held"
LOCK = "logger.lock"
LOG = "logger.log"


def folder_of(env_dir: str | os.PathLike[str]) -> Path:
    """Return the outbox folder of an env's folder."""
    return Path(env_dir) / FOLDER


class Writer:
    """Writes the events of one command's results: knows its steps, by task and by lineage."""

    def __init__(self, steps: dict[str, Step], env: str, pipelines: dict[str, Any], dated: set[str]) -> None:
        """`pipelines`: the config's sections by pipeline and kind; `dated`: the dated kinds."""
        self.steps = steps
        self.env = env
        self.pipelines = pipelines
        self.dated = dated
        self._groups: dict[tuple[str, str | None], list[Step]] = {}
        for step in steps.values():
            self._groups.setdefault((step.pipeline, step.variant), []).append(step)
        self._keys: dict[tuple[str, str | None], str] = {}
        self._made: set[str] = set()  # outbox folders made by this process
        self._upstream_reads = event_files.UpstreamReads()
        self._starts: dict[int, int | None] = {}  # when each process that saves records started

    def lineage(self, step: Step) -> str:
        """Return the key of a step's lineage: a keyed digest of the env, pipeline, variant and the sections of
        all the lineage's step kinds, a dated kind's date aside. A pipeline's own lineage is its sections in the
        config (whichever of its steps a command plans: a sweep plans only those it does not vary); a sweep
        variant's, the sections of its steps and of those upstream of them. A key of values that may be secret
        is a keyed digest, never plain."""
        group = (step.pipeline, step.variant)
        if group not in self._keys:
            if step.variant is None and isinstance(self.pipelines.get(step.pipeline), dict):
                sections = dict(self.pipelines[step.pipeline])
            else:
                tasks = {item.task for item in self._groups[group]}
                for item in self._groups[group]:
                    tasks |= self._upstream(item)
                sections = {self.steps[task].kind.name: self.steps[task].section for task in sorted(tasks)}
            kept = {kind: {key: value for key, value in section.items() if not (kind in self.dated and key == "date")}
                    for kind, section in sections.items() if isinstance(section, dict)}
            text = canonical({"env": self.env, "pipeline": step.pipeline, "variant": step.variant, "sections": kept})
            self._keys[group] = secrets.digest(text.encode())[:32]
        return self._keys[group]

    def write(self, step: Step, date: str | None, made: dict[str, Any], previous: str | None,
              state: dict[str, Any], owner: int, consistent: bool = True) -> None:
        """Write the event of a result just made, before its record is saved (see the module's doc).

        `state` says where the record is saved (the state's files, and the path of keys to the record's id);
        `owner` is the process that saves it. `consistent`: the upstream results the step used are the ones
        this command's config makes (else another command's, with other values: the event's lineage is then
        told by the values its records hold, not by this config). The event file is written first, then the
        links it names (flat in the outbox: `<id>~<n>`): a stop between leaves an event whose record is never
        saved, so dropped."""
        event_id = str(made["id"])
        outbox = self._outbox(step)  # paths as text: this runs once per result (4000 at 1000 pipelines)
        outputs = step.outputs(date)
        sources: list[str] = []

        def link(source: str, **about: Any) -> dict[str, Any]:
            sources.append(source)
            return {"link": f"{event_id}~{len(sources)}", **about}

        above = [self.steps[task] for task in sorted(self._upstream(step)) if not self.steps[task].kind.dated]
        event = {
            "id": event_id, "previous": previous, "made_ns": time.time_ns(), "owner": [owner, self._started(owner)],
            "state": state, "task": step.task, "pipeline": step.pipeline, "variant": step.variant,
            "kind": step.kind.name, "date": date, "env": self.env,
            "lineage": self.lineage(step) if consistent else None,  # None: told by the values logged
            "inputs": sorted(_configured_inputs(step)),
            "folder": f"{step.kind.name}/{date}" if date else step.kind.name,
            "provenance": {"name": provenance.FILE,
                           "record": event_files.record_of(os.path.join(step.folder, provenance.FILE), date)},
            "upstream": [{"kind": item.kind.name, "inputs": sorted(_configured_inputs(item)),
                          "record": self._upstream_reads(os.path.join(item.folder, provenance.FILE))}
                         for item in above],
            "metrics": [link(outputs[name], name=os.path.basename(outputs[name])) for name in step.kind.metrics],
            "artifacts": [link(outputs[name], name=os.path.basename(outputs[name])) for name in step.kind.artifacts],
        }
        event_files.write_new(os.path.join(outbox, f"{event_id}{MADE}"), json.dumps(event))
        for number, source in enumerate(sources, 1):
            event_files.link(source, os.path.join(outbox, f"{event_id}~{number}"))

    def _started(self, owner: int) -> int | None:
        if owner not in self._starts:
            self._starts[owner] = started(owner)
        return self._starts[owner]

    def _outbox(self, step: Step) -> str:
        outbox = os.path.join(step.env_dir, FOLDER)
        if outbox not in self._made:
            os.makedirs(outbox, exist_ok=True)
            self._made.add(outbox)
        return outbox

    def consistent(self, step: Step, made: dict[str, Any], record_of: Callable[[str], Any]) -> bool:
        """Say whether the upstream results a step used are those this command's config makes: each upstream
        step's saved record (`record_of(task)`) is one this config accepts, and the outputs of those it reads
        are the files it consumed (another command with other values may have remade one meanwhile)."""
        consumed = made.get("files") or {}
        for task in self._upstream(step):
            upstream = self.steps[task]
            if upstream.kind.dated:
                continue
            record = record_of(task)
            if not isinstance(record, dict) or config_reasons(upstream, record.get("reads"), None):
                return False
            for path, stamp in (record.get("outputs") or {}).items():
                if path in consumed and consumed[path] != stamped_digest(stamp):
                    return False
        return True

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
    outbox = os.path.join(env_dir, FOLDER)
    with contextlib.suppress(FileNotFoundError):  # sent already: a logger found its record in the state
        os.replace(os.path.join(outbox, f"{event_id}{MADE}"), os.path.join(outbox, f"{event_id}{SAVED}"))


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


def hold(outbox: Path, event: dict[str, Any]) -> None:
    """Set an event MLflow refused aside (`<id>.held`, with its links): no logger sends it again."""
    for name in (f"{event['id']}{SAVED}", f"{event['id']}{MADE}"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(outbox / name, outbox / f"{event['id']}{HELD}")


def held(outbox: Path) -> int:
    """Return how many events MLflow refused are held in an outbox."""
    try:
        return sum(1 for name in os.listdir(outbox) if name.endswith(HELD))
    except OSError:
        return 0


def links(event: dict[str, Any]) -> list[str]:
    """Return the names of the links an event keeps in the outbox."""
    items = [event.get("provenance"), *(item for role in ("upstream", "metrics", "artifacts")
                                       for item in event.get(role) or ())]
    return [str(item["link"]) for item in items if isinstance(item, dict) and item.get("link")]


def remove(outbox: Path, event: dict[str, Any]) -> None:
    """Remove an event's links, then the event (a stop between leaves an event sent again harmlessly)."""
    for name in links(event):
        (outbox / name).unlink(missing_ok=True)
    for name in (f"{event['id']}{SAVED}", f"{event['id']}{MADE}"):
        (outbox / name).unlink(missing_ok=True)


def _event_files(outbox: Path) -> Iterator[Path]:
    try:
        names = os.listdir(outbox)
    except OSError:
        return
    for name in names:
        if name.endswith(SAVED) and not name.startswith("."):
            yield outbox / name


def _configured_inputs(step: Step) -> list[str]:
    """Return the names of the inputs a step's config gives (not those derived from where outputs go)."""
    inputs = step.section.get("inputs")
    return [str(name) for name in inputs] if isinstance(inputs, dict) else []
