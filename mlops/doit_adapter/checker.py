"""doit's file checker on (mtime_ns, size, xxh3 digest): a touched, unchanged file is hashed once."""

from __future__ import annotations

import os
from typing import Any

from doit.dependency import FileChangedChecker

from mlops.state.digests import DigestCache, same_stat


class DigestChecker(FileChangedChecker):  # type: ignore[misc]
    """Compare a file with its recorded (mtime_ns, size, digest, inode), hashing only when its stat moved.

    The inode is part of the stat: a file replaced by `mv` (or a symbolic link pointed elsewhere) with the
    same size and mtime is hashed again, as the digest cache does for every other check.
    """

    cache = DigestCache()

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        """Say whether the file's content differs from the recorded state."""
        if same_stat(file_stat, state):
            return False
        if not isinstance(state, (list, tuple)) or len(state) < 3 or file_stat.st_size != state[1]:
            return True
        return bool(self.cache.digest(file_path, file_stat) != state[2])

    def get_state(self, dep: str, current_state: Any) -> tuple[int, int, str, int] | None:
        """Return the state to record for `dep`, or None when the recorded one still holds."""
        stat = os.stat(dep)
        if current_state and same_stat(stat, current_state):
            return None
        return stat.st_mtime_ns, stat.st_size, self.cache.digest(dep, stat), stat.st_ino



def checker_for(cache: DigestCache) -> type[DigestChecker]:
    """Return a DigestChecker class bound to `cache` (doit instantiates the class itself)."""
    return type("DigestChecker", (DigestChecker,), {"cache": cache})
