"""One lock per task across processes, so two runs in one project never make the same output at once.

The locks of an env's tasks are byte-range (POSIX record) locks on one file, `.locks/tasks`, one byte each at an
offset given by the task's name: a step costs no file made, opened or written for its lock (a file per task
was most of the metadata a first run wrote, beside the outputs), the kernel gives a lock up when its process
dies, and it names the process that holds one. Such locks belong to a process, not to an open file, and
closing any descriptor of the file gives all of that process's up: so each process opens the file once and
keeps it open."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import struct
import sys
from pathlib import Path

FILE = "tasks"
# struct flock on Linux (64-bit off_t): l_type, l_whence, l_start, l_len, l_pid, padded as the kernel lays it out
_FLOCK = "hhqqixxxx"
_OPEN: dict[str, tuple[int, int]] = {}  # the lock file's path -> (this process's id, its descriptor)


class TaskLock:
    """The lock of one task in the env's `.locks` folder."""

    def __init__(self, folder: Path, task_name: str) -> None:
        self.path = folder / FILE
        self.task_name = task_name
        # a 62-bit offset: two of a project's tasks share a byte with odds of about one in 10^14 per pair
        self.offset = int.from_bytes(hashlib.blake2b(task_name.encode(), digest_size=8).digest(), "big") >> 2
        self.held: int | None = None  # the descriptor the lock is held on

    def acquire(self) -> bool:
        """Take the lock; if another run holds it, say so and wait for it to finish. Return whether it waited."""
        descriptor = _descriptor(self.path)
        while not self._try(descriptor):
            holder = _holder(descriptor, self.offset)
            if holder is None:  # given up between the two looks: try again
                continue
            print(f"mlops: {self.task_name} is running in process {holder}; waiting for it", file=sys.stderr)
            try:
                fcntl.lockf(descriptor, fcntl.LOCK_EX, 1, self.offset)
            except OSError as error:
                if error.errno != errno.EDEADLK:
                    raise
                raise OSError(f"{self.task_name}: process {holder} holds it and waits for a task this run holds; "
                              "run the command again once it has finished") from None
            self.held = descriptor
            return True
        self.held = descriptor
        return False

    def _try(self, descriptor: int) -> bool:
        try:
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self.offset)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EAGAIN):
                return False
            raise
        return True

    def release(self) -> None:
        """Give the lock up (once; later calls do nothing)."""
        if self.held is not None:
            fcntl.lockf(self.held, fcntl.LOCK_UN, 1, self.offset)
            self.held = None


def _descriptor(path: Path) -> int:
    """Return this process's descriptor of the lock file, opened once (a child of fork opens its own)."""
    key, pid = str(path), os.getpid()
    known = _OPEN.get(key)
    if known is not None and known[0] == pid:
        return known[1]
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    _OPEN[key] = (pid, descriptor)
    return descriptor


def _holder(descriptor: int, offset: int) -> int | None:
    """Return the process holding the lock at `offset`, None if nobody holds it now."""
    asked = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    kind, _, _, _, pid = struct.unpack(_FLOCK, fcntl.fcntl(descriptor, fcntl.F_GETLK, asked))
    return None if kind == fcntl.F_UNLCK else pid


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
