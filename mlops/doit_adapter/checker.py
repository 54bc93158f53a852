"""doit's file checker on xxh3 digests: a file is hashed only when its identity is not one a digest was kept for."""

from __future__ import annotations

import os
from typing import Any

from doit.dependency import FileChangedChecker

from mlops.state.digests import DigestCache, stamped_digest


class DigestChecker(FileChangedChecker):  # type: ignore[misc]
    """Compare a file's content with the digest recorded for it, through the digest cache: a touched, unchanged
    file is hashed once, and a file replaced or rewritten with the same size and timestamps is hashed again
    (see `common.identity`)."""

    cache = DigestCache()

    def check_modified(self, file_path: str, file_stat: os.stat_result, state: Any) -> bool:
        """Say whether the file's content differs from the recorded state."""
        return self.cache.digest(file_path, file_stat) != stamped_digest(state)

    def get_state(self, dep: str, current_state: Any) -> str | None:
        """Return the state to record for `dep` (its digest), or None when the recorded one still holds."""
        digest = self.cache.digest(dep, os.stat(dep))
        return None if digest == current_state else digest


def checker_for(cache: DigestCache) -> type[DigestChecker]:
    """Return a DigestChecker class bound to `cache` (doit instantiates the class itself)."""
    return type("DigestChecker", (DigestChecker,), {"cache": cache})
