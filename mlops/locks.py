"""One lock per task across processes, so two runs in one project never make the same output at once."""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


@contextmanager
def task_lock(folder: Path, task_name: str) -> Iterator[None]:
    """Hold the task's lock; if another run holds it, say so and wait for it to finish."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{task_name.replace(':', '--')}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"mlops: {task_name} is running in process {_holder(handle) or '?'}; waiting for it",
                  file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        left = _holder(handle)
        if left and left != os.getpid() and not _alive(left):
            # The kernel freed the lock when that process died; its pid is all that is left.
            print(f"mlops: cleared the lock of {task_name} left by process {left}, which is gone",
                  file=sys.stderr)
        _write(handle, str(os.getpid()))
        try:
            yield
        finally:
            _write(handle, "")
            fcntl.flock(handle, fcntl.LOCK_UN)


def _holder(handle: IO[str]) -> int | None:
    handle.seek(0)
    text = handle.read().strip()
    return int(text) if text.isdigit() else None


def _write(handle: IO[str], text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
