"""One lock per task across processes, so two runs in one project never make the same output at once."""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO


class TaskLock:
    """The lock of one task: a file under the env's .locks folder, flock-ed, holding the owner's pid."""

    def __init__(self, folder: Path, task_name: str) -> None:
        self.path = folder / f"{task_name.replace(':', '--')}.lock"
        self.task_name = task_name
        self.handle: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock; if another run holds it, say so and wait for it to finish. Return whether it waited."""
        if not self.path.parent.is_dir():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.handle = open(self.path, "a+", encoding="utf-8", errors="replace")  # noqa: SIM115 - held until release()
        waited = False
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"mlops: {self.task_name} is running in process {_holder(handle) or '?'}; waiting for it",
                  file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
            waited = True
        left = _holder(handle)
        if left and left != os.getpid() and not alive(left):
            # The kernel freed the lock when that process died; its pid is all that is left.
            print(f"mlops: cleared the lock of {self.task_name} left by process {left}, which is gone",
                  file=sys.stderr)
        _write(handle, str(os.getpid()))
        return waited

    def release(self) -> None:
        """Give the lock up (once; later calls do nothing)."""
        if self.handle is not None:
            _write(self.handle, "")
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def _holder(handle: IO[str]) -> int | None:
    handle.seek(0)
    text = handle.read().strip()
    return int(text) if text.isdigit() else None


def _write(handle: IO[str], text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


def started(pid: int) -> int | None:
    """Return when a process started (clock ticks since boot, from /proc), None where that cannot be read: with
    its id, it names one process, where an id alone may be reused (another PID namespace, a later process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rpartition(b")")[2].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def running(pid: int, start: int | None) -> bool:
    """Say whether the process that had id `pid` and started at `start` (None: unknown) still runs."""
    return alive(pid) and (start is None or started(pid) == start)


def alive(pid: int) -> bool:
    """Say whether a process is running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
