"""One file identity for every "has this file changed?" question, with git's racy rule.

A file's identity is (device, inode, size, mtime_ns, ctime_ns). Any write changes the ctime, also one
that puts the mtime back (`cp -p`, `touch -d`, a restored backup), and no one can set it; a file
replaced by `mv` has another inode. So while a file's identity is what it was, so is its content,
with one exception, the racy case git names: a write in the same tick of the file system's clock as
the recorded timestamps leaves them unchanged. An identity recorded at a time within the clock's
granularity of its own mtime or ctime therefore vouches for nothing (`recorded` returns None): the
content is hashed, or the cache entry missed, and the next recording, made later, is trusted.

The digest cache, the config cache, the no-op fingerprint, the walk of a step's code, the Dask worker's
module check, the state store and the failures listing all ask through here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

Identity = list[int]

# A timestamp of the file system's clock is at most one tick (1 to 10 ms on Linux) behind the time the
# process reads; the window adds room for the moment between a stat and its recording.
FINE_WINDOW_NS = 50_000_000
# File systems that keep whole seconds (FAT keeps two): every ctime falls on a second.
COARSE_WINDOW_NS = 2_000_000_000
SECOND_NS = 1_000_000_000


def now() -> int:
    """Return the time a recording is made at, in nanoseconds (the one clock of the racy rule)."""
    return time.time_ns()


def of(info: os.stat_result) -> Identity:
    """Return the identity of a stat: (device, inode, size, mtime_ns, ctime_ns)."""
    return [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def current(path: str | os.PathLike[str]) -> Identity:
    """Return the identity of the file or folder at `path` now, empty if it is missing or out of reach."""
    try:
        return of(os.stat(path))
    except (OSError, ValueError):  # missing, a link loop, a name the system refuses
        return []


def trusted(info: os.stat_result, at_ns: int | None = None) -> bool:
    """Say whether a stat taken at `at_ns` (now, by default) vouches for the content: no write after it can
    leave the same timestamps (git's racy rule)."""
    at_ns = now() if at_ns is None else at_ns
    window = COARSE_WINDOW_NS if info.st_ctime_ns % SECOND_NS == 0 else FINE_WINDOW_NS
    return max(info.st_mtime_ns, info.st_ctime_ns) + window < at_ns


def recorded(info: os.stat_result, at_ns: int | None = None) -> Identity | None:
    """Return the identity to keep for a stat taken at `at_ns`, None when it is racy and vouches for nothing."""
    return of(info) if trusted(info, at_ns) else None


def record(path: str | os.PathLike[str], at_ns: int | None = None) -> Identity | None:
    """Return the identity to keep for the file or folder at `path` ([] if it is missing; None if racy)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return []
    return recorded(info, at_ns)


def same(kept: object, now: Identity) -> bool:
    """Say whether a kept identity (from `record`) still holds for the identity a file has now."""
    return isinstance(kept, list) and kept == now


def unchanged(kept: Mapping[str, object]) -> bool:
    """Say whether every path's kept identity still holds."""
    return all(same(identity, current(path)) for path, identity in kept.items())
