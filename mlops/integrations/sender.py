"""Sending events to MLflow: a lineage's waiting results into its run, each once (see `integrations.logger`).

A result is logged as: the values every step of its lineage read up to it (its upstream's and its own, from
their records, `<kind>.<key>`; a dated step's date is a folder of its files, not a value), the numbers of its
metrics outputs (at the time it ended), its artifact outputs and its record (under `<kind>/`, `<kind>/<date>/`
for a dated step), and tags naming the pipeline, variant, env, version and git commit. A lineage's first run
of a pipeline is named after the pipeline (and sweep variant); a later lineage of the same pipeline by the
values that differ from the first, or by its key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.common.canonical import canonical
from mlops.common.names import one_line
from mlops.integrations.event_files import record_of
from mlops.integrations.tracking import as_params, metrics
from mlops.integrations.tracking_settings import Settings, database

ARTIFACTS = "mlartifacts"  # beside an embedded store's database: the files its runs keep
MAX_NAME = 120  # characters of a run's name
STAGING = ".sending-"  # in the outbox: the files of the events being sent, under the names they are logged as
EVENT = "mlops.event."  # + an event's id: the tag of a result logged into a run


class Sender:
    """Sends events to one experiment of one tracking URI, knowing its runs of lineages."""

    def __init__(self, settings: Settings) -> None:
        from mlops.integrations.mlflow_store import LINEAGE, Refused, Store  # MLflow's import: a logger's only

        path = database(settings.uri)  # an embedded store keeps its runs' files beside it
        artifacts = (path.resolve().parent / ARTIFACTS).as_uri() if path is not None else None
        self.store = Store(settings.uri, settings.experiment, settings.token, artifacts, path)
        self.lineage_tag = LINEAGE
        self.refused = Refused
        self.runs = self.store.lineage_runs()  # by lineage key
        self.params = {run.info.run_id: dict(run.data.params) for run in self.runs.values()}  # as logged so far
        self.touched: dict[str, str] = {}  # run id -> name, of the runs this logger logged into
        self.ended: dict[str, int] = {}  # run id -> when its last result ended

    def send(self, folder: Path, events: list[dict[str, Any]]) -> str:
        """Log the events of one lineage into its run, but those in it already: files first, then values and
        metrics, then the events' tags, in few calls. Return why MLflow refused them ("": it took them)."""
        made = [_record(folder, event.get("provenance"), event.get("date")) for event in events]
        values = _values(folder, events, made)
        key = lineage(folder, events[0])
        run = self._run(key, events[0], values, made[0])
        marks = {f"{EVENT}{event['id']}": str(event["task"]) for event in events}
        new = [index for index, event in enumerate(events) if f"{EVENT}{event['id']}" not in run.data.tags]
        if not new:
            return ""  # logged by an earlier logger that was stopped before it removed the events
        metrics, tags = [], {}
        with tempfile.TemporaryDirectory(dir=folder, prefix=STAGING) as staging:
            files = []
            for index in new:
                event, ended = events[index], _millis(made[index].get("ended"))
                files += _files(folder, event, made[index], Path(staging) / str(index))
                metrics += [(name, value, ended) for name, value in self._metrics(folder, event).items()]
                tags.update(_tags(event, made[index]))
                self.ended[run.info.run_id] = max(self.ended.get(run.info.run_id, 0), ended)
            try:
                self.store.log(run.info.run_id, values, metrics, tags, files, marks)
            except self.refused as error:
                return one_line(str(error), 300)
        run.data.tags.update(marks)
        self.params.setdefault(run.info.run_id, {}).update(values)
        self.touched[run.info.run_id] = run.info.run_name
        return ""

    def end(self) -> None:
        """Mark each run logged into finished, at the end of its last result."""
        for run, ended in self.ended.items():
            self.store.end(run, ended)

    def _run(self, key: str, event: dict[str, Any], values: dict[str, str], made: dict[str, Any]) -> Any:
        if key not in self.runs:
            base = f"{event['pipeline']} {event['variant']}" if event.get("variant") else str(event["pipeline"])
            name = self._name(base, key, str(event["pipeline"]), values)
            tags = {self.lineage_tag: key, "pipeline": str(event["pipeline"]), "env": str(event.get("env")),
                    **({"variant": str(event["variant"])} if event.get("variant") else {})}
            self.runs[key] = self.store.start(name, _millis(made.get("started")), tags)
        return self.runs[key]

    def _name(self, base: str, key: str, pipeline: str, values: dict[str, str]) -> str:
        """Name a new lineage's run: the first of a pipeline (and sweep variant) by them, a later one by the values
        that differ from that first one, or by its key."""
        others = [run for run in self.runs.values() if run.data.tags.get("pipeline") == pipeline]
        same = [run for run in others if run.info.run_name == base]
        if not same:
            return base
        first = self.params.get(same[0].info.run_id, {})
        differing = [f"{name}={value}" for name, value in values.items() if first.get(name, value) != value]
        shown = f"{base} {', '.join(differing)}" if differing else ""
        return shown if shown and len(shown) <= MAX_NAME else f"{base} #{key[:8]}"

    def _metrics(self, folder: Path, event: dict[str, Any]) -> dict[str, float]:
        """Return the numbers of an event's metrics outputs; one that is not JSON is said and left out."""
        found: dict[str, float] = {}
        for item in event.get("metrics") or ():
            try:
                found.update(metrics(folder / str(item["link"])))
            except (OSError, ValueError) as error:
                print(f"mlops: tracking: {event['task']}: {item.get('name')} holds no metrics MLflow can take "
                      f"({one_line(str(error), 200)}); its other values and files are logged", file=sys.stderr)
        return found


def _values(folder: Path, events: list[dict[str, Any]], made: list[dict[str, Any]]) -> dict[str, str]:
    """Return the values the steps of these events read, upstream included, from their records."""
    values: dict[str, str] = {}
    for event, record in zip(events, made, strict=True):
        for upstream in event.get("upstream") or ():
            values.update(_read(str(upstream.get("kind")), _record(folder, upstream, None), None,
                                upstream.get("inputs") or ()))
        values.update(_read(str(event["kind"]), record, event.get("date"), event.get("inputs") or ()))
    return values


def lineage(folder: Path, event: dict[str, Any]) -> str:
    """Return an event's lineage key: the one its command gave, or, when the upstream results its step used were
    another command's, one of the values its records hold."""
    if event.get("lineage"):
        return str(event["lineage"])
    made = _record(folder, event.get("provenance"), event.get("date"))
    text = canonical({"env": event.get("env"), "pipeline": event.get("pipeline"), "variant": event.get("variant"),
                      "values": _values(folder, [event], [made])})
    return "values-" + hashlib.sha256(text.encode()).hexdigest()[:26]  # of values shown masked already


def _files(folder: Path, event: dict[str, Any], made: dict[str, Any], staging: Path) -> list[tuple[str, str]]:
    """Return an event's files to log (path, artifact folder), each under its own name in `staging`: its
    artifacts linked, its record written (a dated step's file holds a record per date: that date's)."""
    staging.mkdir(parents=True)
    found = []
    for item in event.get("artifacts") or ():
        with contextlib.suppress(OSError):  # a link the command was stopped before making
            os.link(folder / str(item["link"]), staging / str(item["name"]))
            found.append((str(staging / str(item["name"])), str(event["folder"])))
    if made:
        (staging / "provenance.json").write_text(json.dumps(made, indent=2, sort_keys=True) + "\n")
        found.append((str(staging / "provenance.json"), str(event["folder"])))
    return found


def _record(folder: Path, item: Any, date: Any) -> dict[str, Any]:
    """Return the provenance record an event holds or links to (that date's, for a dated step; empty when
    missing)."""
    if isinstance(item, dict) and isinstance(record := item.get("record"), dict):
        return record  # copied into the event (that date's, for a dated step)
    if not isinstance(item, dict) or not item.get("link"):
        return {}
    return record_of(folder / str(item["link"]), str(date) if date else None)  # an event of an earlier version


def _read(kind: str, made: dict[str, Any], date: Any, configured: Any) -> dict[str, str]:
    """Return what a step's record says it read, as parameters: its function, the paths of the inputs its config
    gives (`configured`: not those derived from where outputs go) and its values (a dated step's date aside: it
    is a folder of its files)."""
    inputs: dict[str, Any] = made["inputs"] if isinstance(made.get("inputs"), dict) else {}
    reads = {"fn": made.get("fn"), **{f"inputs.{name}": item.get("path") for name, item in inputs.items()
                                      if isinstance(item, dict) and name in configured}}
    reads.update((key, value) for key, value in (made.get("params") or {}).items() if not (date and key == "date"))
    return as_params(kind, {key: value for key, value in reads.items() if value is not None})


def _tags(event: dict[str, Any], made: dict[str, Any]) -> dict[str, str]:
    project: dict[str, Any] = made["project"] if isinstance(made.get("project"), dict) else {}
    git: dict[str, Any] = project["git"] if isinstance(project.get("git"), dict) else {}
    found = {"pipeline": str(event["pipeline"]), "env": str(event.get("env")), "version": str(project.get("version")),
             **({"variant": str(event["variant"])} if event.get("variant") else {})}
    if git:
        found.update({"git_commit": str(git.get("commit")), "git_dirty": str(bool(git.get("dirty"))).lower()})
    return found


def _millis(stamp: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(stamp)).timestamp() * 1000)
    except ValueError:
        return 0
