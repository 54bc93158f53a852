"""doit's file checker on (mtime_ns, size, xxh3 digest): a touched, unchanged file is hashed once."""

from __future__ import annotations

import os
from typing import Any

from doit.dependency import FileChangedChecker

from mlops.state.digests import DigestCache


class DigestChecker(FileChangedChecker):  # type: ignore[misc]
    """Compare a file with its recorded (mtime_ns, size, digest), hashing only when its stat moved."""

    cache = DigestCache()

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        """Say whether the file's content differs from the recorded state."""
        mtime_ns, size, digest = state
        if file_stat.st_mtime_ns == mtime_ns and file_stat.st_size == size:
            return False
        if file_stat.st_size != size:
            return True
        return bool(self.cache.digest(file_path, file_stat) != digest)

    def get_state(self, dep: str, current_state: Any) -> tuple[int, int, str] | None:
        """Return the state to record for `dep`, or None when the recorded one still holds."""
        stat = os.stat(dep)
        if current_state and list(current_state[:2]) == [stat.st_mtime_ns, stat.st_size]:
            return None
        return stat.st_mtime_ns, stat.st_size, self.cache.digest(dep, stat)


def checker_for(cache: DigestCache) -> type[DigestChecker]:
    """Return a DigestChecker class bound to `cache` (doit instantiates the class itself)."""
    return type("DigestChecker", (DigestChecker,), {"cache": cache})
