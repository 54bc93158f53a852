"""File content digests, each content hashed once: a cache keyed by stat, kept between runs."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import xxhash

from mlops.common.files import parse_json, write_atomically

CHUNK = 1 << 20


def file_digest(path: str | os.PathLike[str]) -> str:
    """Return the xxh3-128 digest of a file's content, read in 1 MiB chunks."""
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def same_stat(stat: os.stat_result, state: Any) -> bool:
    """Say whether a file's stat still matches a recorded (mtime_ns, size, digest, inode) state.

    The inode counts: a file replaced by `mv` (or a link pointed elsewhere) with the same size and
    mtime must be hashed again. A state kept before the inode was (three fields) compares on mtime and size.
    """
    if not isinstance(state, (list, tuple)) or len(state) < 3:
        return False  # a state of another shape (another checker's, damaged): compare the content
    inode = state[3] if len(state) > 3 else stat.st_ino
    return bool(stat.st_mtime_ns == state[0] and stat.st_size == state[1] and stat.st_ino == inode)


class DigestCache:
    """Digests by path, valid while the file's (mtime, size, inode) stay the same; saved at exit."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, list[Any]] | None = None
        self.hashed = 0  # files read in this process; nothing to save while it is 0

    def digest(self, path: str, stat: os.stat_result | None = None) -> str:
        """Return the digest of `path`, reading the file only if its stat changed since last time."""
        stat = stat or os.stat(path)
        key = [stat.st_mtime_ns, stat.st_size, stat.st_ino]
        entries = self._entries()
        cached = entries.get(path)
        if isinstance(cached, list) and len(cached) == 4 and cached[:3] == key:  # any other shape: hash again
            return str(cached[3])
        try:
            digest = file_digest(path)
        except OSError as error:  # a folder where a file should be, an unreadable file: it differs from any file
            return f"<{error.strerror}>"
        self.hashed += 1
        entries[path] = [*key, digest]
        return digest

    def remember(self, path: str, stat: os.stat_result, digest: str) -> None:
        """Keep a digest computed elsewhere for a file as it now is (an output hashed before it was published)."""
        self._entries()[path] = [stat.st_mtime_ns, stat.st_size, stat.st_ino, digest]
        self.hashed += 1

    def save(self) -> None:
        """Write the cache atomically; losing it only costs hashing again."""
        if self.path is None or not self.hashed:
            return
        with contextlib.suppress(OSError):  # a folder we cannot write: the next run hashes again
            write_atomically(self.path, json.dumps(self.entries))

    def _entries(self) -> dict[str, list[Any]]:
        if self.entries is None:
            self.entries = {}
            if self.path is not None:
                with contextlib.suppress(OSError, ValueError, TypeError):
                    self.entries = dict(parse_json(self.path.read_text()))
                atexit.register(self.save)
        return self.entries
