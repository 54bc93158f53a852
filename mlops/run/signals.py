"""Stop cleanly on SIGINT and SIGTERM: stop the steps' child processes, then exit 130 or 143.

The exit unwinds normally: the running step's staged files are removed, doit's state store
folds its journal, and what finished before the signal stays recorded.

Python runs a signal handler between two bytecodes of whatever runs then; where that is a weakref
callback or a `__del__`, the exception it raises is printed as "ignored" and lost. So the stop is
kept as a fact too: `checkpoint()`, called before each task and before a step publishes, raises it
again, and a second signal after a lost stop raises it at once (while a stop unwinds, a second
signal is ignored: it must not interrupt the clean-up).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

EXIT_CODES: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
ON_STOP: list[Callable[[], None]] = []  # called first when a signal stops the command (cancel remote work)


class Stopped(SystemExit):
    """The exit a signal asks for (not a step calling sys.exit)."""


_stopped: list[int] = []  # the signal that stopped this process, once one did
_lost: list[bool] = []  # not empty once the stop's exception was swallowed (raised in a finalizer)


def install() -> None:
    """Handle SIGINT and SIGTERM in this process (only from the main thread, as Python requires); call it
    again and nothing changes."""
    for signum in EXIT_CODES:
        signal.signal(signum, _stop)
    if sys.unraisablehook is not _unraisable:
        _previous_hooks.append(sys.unraisablehook)
        sys.unraisablehook = _unraisable


def checkpoint() -> None:
    """Raise the stop a signal asked for, if one did: its exception, raised wherever the signal arrived, was lost
    (in a finalizer) or caught on the way, since this runs only between tasks and steps."""
    if _stopped:
        raise Stopped(EXIT_CODES[_stopped[0]])


def _stop(signum: int, frame: FrameType | None) -> None:
    if _stopped:
        if _lost:  # the first one's exception never reached the command: this one does
            _lost.clear()
            checkpoint()
        return  # the stop is unwinding: the clean-up is not interrupted
    _stopped.append(signum)
    for stop in ON_STOP:
        with contextlib.suppress(Exception):  # stopping anyway: what cannot be cancelled is left to end
            stop()
    stopped = stop_descendants(signum)
    name = signal.Signals(signum).name
    extra = f"; stopped {stopped} child process(es)" if stopped else ""
    print(f"mlops: {name} received, stopping{extra}; finished steps stay recorded", file=sys.stderr)
    raise Stopped(EXIT_CODES[signum])


_previous_hooks: list[Callable[[Any], object]] = []


def _unraisable(unraisable: Any) -> None:
    """Python's hook for an exception it cannot raise (in a finalizer): a lost stop is noted, not printed."""
    if isinstance(unraisable.exc_value, Stopped):
        _lost.append(True)
        return
    (_previous_hooks[-1] if _previous_hooks else sys.__unraisablehook__)(unraisable)


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
