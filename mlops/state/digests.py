"""File content digests, each content hashed once: a cache keyed by the file identity, kept between runs."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import xxhash

from mlops.common import identity
from mlops.common.files import parse_json, write_atomically

CHUNK = 1 << 20


def file_digest(path: str | os.PathLike[str]) -> str:
    """Return the xxh3-128 digest of a file's content, read in 1 MiB chunks."""
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def stamped_digest(stamp: Any) -> str | None:
    """Return the digest a record keeps for a file: the digest itself, or the third field of the
    (mtime_ns, size, digest, inode) stamp older versions kept; None for anything else."""
    if isinstance(stamp, str):
        return stamp
    if isinstance(stamp, (list, tuple)) and len(stamp) >= 3 and isinstance(stamp[2], str):
        return stamp[2]
    return None


class DigestCache:
    """Digests by path, each valid while the file keeps the identity it had when hashed (`common.identity`,
    racy rule included); saved at exit."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.entries: dict[str, list[Any]] | None = None
        self.hashed = 0  # entries changed in this process; nothing to save while it is 0

    def digest(self, path: str, stat: os.stat_result | None = None) -> str:
        """Return the digest of `path`, reading the file only if its identity is not one a digest was kept for.

        `stat`: the file's stat, taken just now."""
        at = identity.now()
        stat = stat or os.stat(path)
        entries = self._entries()
        cached = entries.get(path)
        if isinstance(cached, list) and len(cached) == 6 and cached[:5] == identity.of(stat):
            return str(cached[5])  # any other shape: hash again
        try:
            digest = file_digest(path)
        except OSError as error:  # a folder where a file should be, an unreadable file: it differs from any file
            return f"<{error.strerror}>"
        self._keep(path, stat, digest, at)
        return digest

    def remember(self, path: str, stat: os.stat_result, digest: str) -> None:
        """Keep a digest computed elsewhere for a file as it now is (an output hashed before it was published)."""
        self._keep(path, stat, digest, identity.now())

    def _keep(self, path: str, stat: os.stat_result, digest: str, at: int) -> None:
        kept = identity.recorded(stat, at)
        entries = self._entries()
        if kept is not None:
            entries[path] = [*kept, digest]
        elif entries.pop(path, None) is None:
            return  # racy (just written): hashed again when next asked, once its timestamps are in the past
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
