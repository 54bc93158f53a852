"""Stop cleanly on SIGINT and SIGTERM: stop the steps' child processes, then exit 130 or 143.

The exit unwinds normally: the running step's staged files are removed, doit's state store
folds its journal, and what finished before the signal stays recorded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

EXIT_CODES: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
ON_STOP: list[Callable[[], None]] = []  # called first when a signal stops the command (cancel remote work)


class Stopped(SystemExit):
    """The exit a signal asks for (not a step calling sys.exit)."""


def install() -> None:
    """Handle SIGINT and SIGTERM in this process (only from the main thread, as Python requires)."""
    for signum in EXIT_CODES:
        signal.signal(signum, _stop)


def _stop(signum: int, frame: FrameType | None) -> None:
    for signum_ in EXIT_CODES:
        signal.signal(signum_, signal.SIG_IGN)  # a second signal must not interrupt the clean-up
    for stop in ON_STOP:
        with contextlib.suppress(Exception):  # stopping anyway: what cannot be cancelled is left to end
            stop()
    stopped = stop_descendants(signum)
    name = signal.Signals(signum).name
    extra = f"; stopped {stopped} child process(es)" if stopped else ""
    print(f"mlops: {name} received, stopping{extra}; finished steps stay recorded", file=sys.stderr)
    raise Stopped(EXIT_CODES[signum])


def stop_descendants(signum: int) -> int:
    """Send `signum` to every process descended from this one; return how many were found."""
    found = descendants(os.getpid())
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
    return len(found)


def descendants(root: int) -> list[int]:
    """Return the pids of the processes below `root`, read from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces; the parent pid follows it.
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
