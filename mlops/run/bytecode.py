"""Code tracked by its content runs as its source reads now: Python's bytecode cache of it is checked against the
source on import (PEP 552), for the modules a step imports and for dodo.py and whatever it imports.

Python trusts a timestamp bytecode cache while the source's mtime (whole seconds) and size stay the same: a
same-size edit within that second, or one that puts the mtime back, would run the old code. A checked-hash
cache is never used for other source. Installed packages (the standard library, site-packages) keep theirs.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import py_compile
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

from mlops.run.locations import installed

_CHECKED: set[str] = set()  # the files this process has checked


def checked_bytecode(paths: list[str], once: bool = False) -> None:
    """Make Python check the source of each file against its bytecode cache on import (PEP 552).

    A timestamp cache is stale after a same-size edit within the second it was written; a
    checked-hash one is never used for other source. With bytecode writing off, stale caches go. `once`: skip the
    files this process checked before (a step's, before each step: an import, a worker's import again of a
    changed module included, goes through `CheckedSources`, which always checks).
    """
    for path in paths:
        if once and path in _CHECKED:
            continue
        _CHECKED.add(path)
        cached = importlib.util.cache_from_source(path)
        with contextlib.suppress(OSError), open(cached, "rb") as handle:
            header = handle.read(8)
            if header[:4] == importlib.util.MAGIC_NUMBER and int.from_bytes(header[4:8], "little") & 3 == 3:
                continue
        if sys.dont_write_bytecode:
            with contextlib.suppress(OSError):
                os.remove(cached)
            continue
        with contextlib.suppress(OSError, py_compile.PyCompileError):
            py_compile.compile(path, cfile=cached, doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)


class CheckedSources(importlib.abc.MetaPathFinder):
    """Find modules as Python's path finder does; a module's source outside the installed packages gets a
    checked-hash bytecode cache before it is loaded."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        """Return the path finder's spec of `name`, its bytecode cache made checked first."""
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        origin = spec.origin if spec is not None else None
        if isinstance(origin, str) and origin.endswith(".py") and not installed(origin):
            checked_bytecode([origin])
        return spec


def guard_imports() -> None:
    """Check the bytecode of every module this process imports from now on (once; right before the path
    finder, so that built-in and frozen modules stay theirs)."""
    if any(isinstance(finder, CheckedSources) for finder in sys.meta_path):
        return
    finders = sys.meta_path
    index = finders.index(importlib.machinery.PathFinder) if importlib.machinery.PathFinder in finders \
        else len(finders)
    finders.insert(index, CheckedSources())
