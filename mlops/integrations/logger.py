"""The tracking logger: sends the outbox's events to MLflow, each exactly once, one run per lineage.

A command writes events (`integrations.outbox`) and starts this logger in a process of its own
(`python -m mlops.integrations.logger OUTBOX`, the tracking settings in its environment), which may outlive
it; `doit tracking` runs the same in its own process. One logger at a time holds the outbox's lock: it
claims every event it sends.

Sending an event is idempotent, so a stop at any point and a retry never log a result twice: the lineage's
run is found by its tag (`mlops.lineage`) before one is made; an event already in it (its tag
`mlops.event.<id>`) is not logged again; the event's tag is written last, in the batch that ends its logging;
the event is removed from the outbox only after that. A result is logged as: the values every step of its
lineage read up to it (its upstream's and its own, from their records, `<kind>.<key>`; a dated step's date is
a folder of its files, not a value), the numbers of its metrics outputs (at the time it ended), its artifact
outputs and its record (under `<kind>/`, `<kind>/<date>/` for a dated step), and tags naming the pipeline,
variant, env, version and git commit. A lineage's first run of a pipeline is named after the pipeline (and
sweep variant); a later lineage of the same pipeline by the values that differ from the first, or by its key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlops.common import secrets
from mlops.common.files import parse_json
from mlops.common.names import one_line
from mlops.integrations import outbox
from mlops.integrations.tracking import ENV_EXPERIMENT, ENV_TOKEN, ENV_URI, as_params, metrics
from mlops.integrations.tracking_settings import Settings, database
from mlops.state.locks import alive
from mlops.state.store import read_state

ARTIFACTS = "mlartifacts"  # beside an embedded store's database: the files its runs keep
MAX_NAME = 120  # characters of a run's name
STAGING = ".sending-"  # in the outbox: the files of the events being sent, under the names they are logged as
EVENT = "mlops.event."  # + an event's id: the tag of a result logged into a run
TORN_AFTER = 3600  # seconds after which an event file left half-written is removed (its writer is long gone)


@dataclass
class Flushed:
    """What one flush did: results sent, events dropped (their record was never saved), events left waiting
    (their command still saving them), and the runs it logged into by name."""

    sent: int = 0
    dropped: int = 0
    waiting: int = 0
    runs: list[str] = field(default_factory=list)


def flush(folder: Path, settings: Settings) -> Flushed:
    """Send every event of the outbox `folder` whose record was saved; drop those whose never will be.

    MLflow's or the store's failures propagate (the events stay for the next flush)."""
    secrets.note_url_passwords(settings.uri)  # MLflow's errors name the URI
    secrets.note(settings.token)
    done = Flushed()
    with _claimed(folder):
        for stale in folder.glob(f"{STAGING}*"):  # left by a logger stopped while it sent
            shutil.rmtree(stale, ignore_errors=True)
        for torn in folder.glob(".*.tmp"):  # an event a command was stopped while it wrote, long ago
            with contextlib.suppress(OSError):
                if time.time() - torn.stat().st_mtime > TORN_AFTER:
                    torn.unlink()
        sender: Sender | None = None
        progress = True
        while progress:  # until a look finds nothing more to send (a command may add events meanwhile)
            pending = outbox.events(folder)
            replaced = {event.get("previous") for event in pending}
            states: dict[tuple[str, ...], Any] = {}
            lineages: dict[str, list[dict[str, Any]]] = {}
            for event in pending:
                verdict = _verdict(event, replaced, states)
                if verdict == "drop":
                    outbox.remove(folder, event)
                    done.dropped += 1
                elif verdict == "send":
                    lineages.setdefault(str(event.get("lineage")), []).append(event)
            progress = bool(lineages)
            for events in lineages.values():  # a lineage's events in one run, in few calls
                sender = sender or Sender(settings)
                sender.send(folder, events)
                for event in events:
                    outbox.remove(folder, event)
                done.sent += len(events)
        if sender is not None:
            sender.end()
            done.runs = sorted(sender.touched.values())
        done.waiting = outbox.count(folder)
    return done


@contextlib.contextmanager
def _claimed(folder: Path) -> Iterator[None]:
    """Hold the outbox's lock: one logger sends at a time (a second one waits, then finds what is left)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / outbox.LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _verdict(event: dict[str, Any], replaced: set[Any], states: dict[tuple[str, ...], Any]) -> str:
    """Say whether an event is to be sent (its record was saved), dropped (it never will be) or left waiting;
    `replaced`: the ids of the records the waiting events' records replace."""
    if event["saved"] or event["id"] in replaced:
        return "send"  # marked, or replaced by a later result of the same step, which is saved only after it
    if _current_id(event, states) == event["id"]:
        return "send"
    owner = event.get("owner")
    return "wait" if isinstance(owner, int) and alive(owner) else "drop"


def _current_id(event: dict[str, Any], states: dict[tuple[str, ...], Any]) -> Any:
    """Return the id of the record saved now where the event's record goes, as the state store has it."""
    state = event.get("state") or {}
    files = tuple(str(path) for path in state.get("files") or ())
    if len(files) != 2:
        return None
    if files not in states:
        try:
            states[files] = read_state(*files)
        except Exception:  # an unreadable state: the event waits, or goes with its dead owner
            states[files] = {}
    found: Any = states[files]
    for key in state.get("path") or ():
        found = found.get(key) if isinstance(found, dict) else None
    return found


class Sender:
    """Sends events to one experiment of one tracking URI, knowing its runs of lineages."""

    def __init__(self, settings: Settings) -> None:
        from mlops.integrations.mlflow_store import LINEAGE, Store  # MLflow's import: only a logger pays it

        path = database(settings.uri)  # an embedded store keeps its runs' files beside it
        artifacts = (path.resolve().parent / ARTIFACTS).as_uri() if path is not None else None
        self.store = Store(settings.uri, settings.experiment, settings.token, artifacts, path)
        self.lineage_tag = LINEAGE
        self.runs = self.store.lineage_runs()  # by lineage key
        self.params = {run.info.run_id: dict(run.data.params) for run in self.runs.values()}  # as logged so far
        self.touched: dict[str, str] = {}  # run id -> name, of the runs this logger logged into
        self.ended: dict[str, int] = {}  # run id -> when its last result ended

    def send(self, folder: Path, events: list[dict[str, Any]]) -> None:
        """Log the events of one lineage into its run, but those in it already: files first, then values and
        metrics, then the events' tags, in few calls."""
        made = [_record(folder, event.get("provenance"), event.get("date")) for event in events]
        values: dict[str, str] = {}
        for event, record in zip(events, made, strict=True):
            for upstream in event.get("upstream") or ():
                values.update(_read(str(upstream.get("kind")), _record(folder, upstream, None), None))
            values.update(_read(str(event["kind"]), record, event.get("date")))
        run = self._run(events[0], values, made[0])
        marks = {f"{EVENT}{event['id']}": str(event["task"]) for event in events}
        new = [index for index, event in enumerate(events) if f"{EVENT}{event['id']}" not in run.data.tags]
        if not new:
            return  # logged by an earlier logger that was stopped before it removed the events
        metrics, tags = [], {}
        with tempfile.TemporaryDirectory(dir=folder, prefix=STAGING) as staging:
            files = []
            for index in new:
                event, ended = events[index], _millis(made[index].get("ended"))
                files += _files(folder, event, made[index], Path(staging) / str(index))
                metrics += [(key, value, ended) for key, value in self._metrics(folder, event).items()]
                tags.update(_tags(event, made[index]))
                self.ended[run.info.run_id] = max(self.ended.get(run.info.run_id, 0), ended)
            self.store.log(run.info.run_id, values, metrics, tags, files, marks)
        run.data.tags.update(marks)
        self.params.setdefault(run.info.run_id, {}).update(values)
        self.touched[run.info.run_id] = run.info.run_name

    def end(self) -> None:
        """Mark each run logged into finished, at the end of its last result."""
        for run, ended in self.ended.items():
            self.store.end(run, ended)

    def _run(self, event: dict[str, Any], values: dict[str, str], made: dict[str, Any]) -> Any:
        key = str(event["lineage"])
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
    """Return the provenance record an event links to (that date's, for a dated step; empty when missing)."""
    if not isinstance(item, dict) or not item.get("link"):
        return {}
    try:
        made = parse_json((folder / str(item["link"])).read_text())
    except (OSError, ValueError):
        return {}
    if date and isinstance(made, dict):
        made = made.get(str(date))
    return made if isinstance(made, dict) else {}


def _read(kind: str, made: dict[str, Any], date: Any) -> dict[str, str]:
    """Return what a step's record says it read, as parameters: its function, its inputs' paths and its values
    (a dated step's date aside: it is a folder of its files)."""
    inputs: dict[str, Any] = made["inputs"] if isinstance(made.get("inputs"), dict) else {}
    reads = {"fn": made.get("fn"), **{f"inputs.{name}": item.get("path") for name, item in inputs.items()
                                      if isinstance(item, dict)}}
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


def main(argv: list[str]) -> int:
    """Flush one outbox with the settings in this process's environment; failures are one line on stderr."""
    settings = Settings(True, os.environ.get(ENV_URI, ""), os.environ.get(ENV_EXPERIMENT, ""),
                        os.environ.get(ENV_TOKEN, ""))
    try:
        flush(Path(argv[0]), settings)
    except Exception as error:  # MLflow, its database or its server: the events stay for the next flush
        print(f"mlops: tracking: not logged to {settings.shown_uri} "
              f"({one_line(f'{type(error).__name__}: {error}', 300)}); `doit tracking` retries", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
