"""The tracking logger: sends the outbox's events to MLflow, each exactly once, one run per lineage.

A command writes events (`integrations.outbox`) and starts this logger in a process of its own
(`python -m mlops.integrations.logger OUTBOX`, the tracking settings in its environment), which may outlive
it; `doit tracking` runs the same in its own process. One logger at a time holds the outbox's lock: it
claims every event it sends.

Sending an event is idempotent, so a stop at any point and a retry never log a result twice: the lineage's
run is found by its tag (`mlops.lineage`) before one is made; an event already in it (its tag
`mlops.event.<id>`) is not logged again; the events' tags are written last, once all else is; an event is
removed from the outbox only after that (`integrations.sender`). What MLflow refuses is held aside.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.common import secrets
from mlops.common.names import one_line
from mlops.integrations import outbox
from mlops.integrations.sender import STAGING, Sender, lineage
from mlops.integrations.tracking import ENV_EXPERIMENT, ENV_TOKEN, ENV_URI
from mlops.integrations.tracking_settings import Settings
from mlops.state.locks import running
from mlops.state.store import read_state

AGAIN = ".again"  # in the outbox: a logger that found it held asks the one holding it to look again
TORN_AFTER = 3600  # seconds after which an event file left half-written is removed (its writer is long gone)


@dataclass
class Flushed:
    """What one flush did: results sent, events dropped (their record was never saved), events left waiting
    (their command still saving them), and the runs it logged into by name."""

    sent: int = 0
    dropped: int = 0
    held: int = 0
    waiting: int = 0
    runs: list[str] = field(default_factory=list)


def flush(folder: Path, settings: Settings, wait: bool = True,
          shown: Callable[[list[dict[str, Any]]], None] | None = None) -> Flushed:
    """Send every event of the outbox `folder` whose record was saved; drop those whose never will be; hold
    those MLflow refuses (one line each: the rest goes on). `wait`: for a logger that holds the outbox (else,
    when one does, ask it to look again, and leave). `shown` is told what waits, once the outbox is held.

    MLflow's or the store's failures propagate (the events stay for the next flush)."""
    secrets.note_url_passwords(settings.uri)  # MLflow's errors name the URI
    secrets.note(settings.token)
    done = Flushed()
    while True:
        with _claimed(folder, wait) as held:
            if not held:
                return done  # the logger that holds it looks again before it leaves
            (folder / AGAIN).unlink(missing_ok=True)
            _clean(folder)
            if shown is not None:
                shown(outbox.events(folder))
                shown = None
            _send_all(folder, settings, done)
        if not (folder / AGAIN).exists():
            return done
        wait = False  # another logger asked while this one sent: look again, unless it took the outbox itself


def _send_all(folder: Path, settings: Settings, done: Flushed) -> None:
    """Send what can be sent, look again for what commands added meanwhile, until nothing more is sent."""
    sender: Sender | None = None
    progress = True
    while progress:
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
                lineages.setdefault(lineage(folder, event), []).append(event)
        progress = bool(lineages)
        for events in lineages.values():  # a lineage's events in one run, in few calls
            sender = sender or Sender(settings)
            refused = sender.send(folder, events)
            for event in events:
                if refused:
                    outbox.hold(folder, event)
                else:
                    outbox.remove(folder, event)
            if refused:
                done.held += len(events)
                print(f"mlops: tracking: {', '.join(sorted({str(e['task']) for e in events}))}: MLflow refused "
                      f"{'its result' if len(events) == 1 else 'their results'} ({refused}); kept in "
                      f"{folder.name}/ as *{outbox.HELD}, the rest is logged", file=sys.stderr)
            else:
                done.sent += len(events)
    if sender is not None:
        sender.end()
        done.runs = sorted(sender.touched.values())
    done.waiting = outbox.count(folder)


def _clean(folder: Path) -> None:
    """Remove what a stopped logger, or a command stopped long ago while it wrote an event, left."""
    for stale in folder.glob(f"{STAGING}*"):
        shutil.rmtree(stale, ignore_errors=True)
    for torn in folder.glob(".*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - torn.stat().st_mtime > TORN_AFTER:
                torn.unlink()


@contextlib.contextmanager
def _claimed(folder: Path, wait: bool) -> Iterator[bool]:
    """Hold the outbox's lock: one logger sends at a time. A second one waits (`wait`), or asks the one that
    holds it to look again once it is done (a file), and leaves: loggers do not queue."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / outbox.LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            (folder / AGAIN).touch()
            try:  # the holder may have left between the two: then this one sends
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        yield True


def _verdict(event: dict[str, Any], replaced: set[Any], states: dict[tuple[str, ...], Any]) -> str:
    """Say whether an event is to be sent (its record was saved), dropped (it never will be) or left waiting;
    `replaced`: the ids of the records the waiting events' records replace."""
    if event["saved"] or event["id"] in replaced:
        return "send"  # marked, or replaced by a later result of the same step, which is saved only after it
    if _current_id(event, states) == event["id"]:
        return "send"
    owner = event.get("owner")
    pid, start = owner if isinstance(owner, list) and len(owner) == 2 else (owner, None)
    return "wait" if isinstance(pid, int) and running(pid, start) else "drop"


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


def main(argv: list[str]) -> int:
    """Flush one outbox with the settings in this process's environment; failures are one line on stderr."""
    settings = Settings(True, os.environ.get(ENV_URI, ""), os.environ.get(ENV_EXPERIMENT, ""),
                        os.environ.get(ENV_TOKEN, ""))
    try:
        flush(Path(argv[0]), settings, wait=False)
    except Exception as error:  # MLflow, its database or its server: the events stay for the next flush
        print(f"mlops: tracking: not logged to {settings.shown_uri} "
              f"({one_line(f'{type(error).__name__}: {error}', 300)}); `doit tracking` retries", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
