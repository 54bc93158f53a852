"""Where modules live, and so how their code is tracked: by its content (the project's files, and any module no
installed distribution provides where it lies, such as a folder on PYTHONPATH or another package's source
installed editable), or by the version of the distribution installed beside it (site-packages, a virtual
environment kept in the project, a folder on PYTHONPATH with the distribution's metadata in it).

Also what a cached answer about code depends on: the folders Python looks for a module in before it finds it
(a new file there would be found first), and the files the installed versions are read from.
"""

from __future__ import annotations

import importlib.metadata
import os
import site
import sys
from functools import cache
from pathlib import Path

from mlops.plan.functions import Found

METADATA = {".dist-info": "METADATA", ".egg-info": "PKG-INFO"}  # a distribution's folder: its version's file


def tracked_as_source(found: Found) -> bool:
    """Say whether a module's code is tracked by its content (see the module's doc); links unresolved."""
    where = found.origin or next(iter(found.folders or ()), None)
    if not where or (not os.path.isabs(where) and not os.path.exists(where)):
        return False
    path = os.path.abspath(where)
    if installed(path):
        return False
    if Path(path).is_relative_to(os.path.abspath(Path.cwd())):
        return True
    entry = _entry_of(path)
    return entry is None or found.name.partition(".")[0] not in _provided(entry)


def installed(path: str) -> bool:
    """Say whether a file lies in the folders installed packages and the standard library live in (links
    unresolved)."""
    return os.path.abspath(path).startswith(_installed())  # asked on every import: text, not pathlib


@cache
def _installed() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), site.getusersitepackages()}
    return tuple(os.path.join(os.path.abspath(root), "") for root in roots if root)


def _entries() -> list[str]:
    return [os.path.abspath(entry or ".") for entry in sys.path]


def _entry_of(path: str) -> str | None:
    """Return the folder of sys.path a file lies in (the deepest one), None if it lies in none."""
    holding = [entry for entry in _entries() if Path(path).is_relative_to(entry)]
    return max(holding, key=len) if holding else None


@cache
def _provided(entry: str) -> frozenset[str]:
    """Return the top-level modules the distributions installed in a folder of sys.path provide."""
    names: set[str] = set()
    for dist in importlib.metadata.distributions(path=[entry]):
        tops = (dist.read_text("top_level.txt") or "").split()
        if not tops:  # no top_level.txt: the first part of each file it installed
            tops = [file.parts[0].removesuffix(".py") for file in dist.files or ()
                    if not file.parts[0].endswith((".dist-info", ".egg-info", "__pycache__"))]
        names.update(tops)
    return frozenset(names)


def search_folders(path: str) -> set[str]:
    """Return the folders Python looks in for the module of a file as well as in the folder it lies in: for a
    module in a namespace package (a package folder without __init__.py), that package's folder in every
    folder of sys.path; a file made in one of them may be found first."""
    entry = _entry_of(os.path.abspath(path))
    if entry is None:
        return set()
    packages = Path(os.path.abspath(path)).relative_to(entry).parts[:-1]
    found: set[str] = set()
    for depth in range(1, len(packages) + 1):
        package = os.path.join(*packages[:depth])
        if not os.path.exists(os.path.join(entry, package, "__init__.py")):
            found.update(os.path.join(other, package) for other in _entries())
    return found


def version_sources() -> list[str]:
    """Return the files and folders installed versions are read from: each folder of sys.path (an install
    adds or removes a distribution's folder there) and each distribution's metadata file in it (an editable
    install rewrites its version in place)."""
    found = []
    for entry in dict.fromkeys(_entries()):
        found.append(entry)
        try:
            with os.scandir(entry) as listing:  # each item knows whether it is a folder: no stat of its own
                items = sorted((item for item in listing if os.path.splitext(item.name)[1] in METADATA),
                               key=lambda item: item.name)
                found.extend(os.path.join(item.path, METADATA[os.path.splitext(item.name)[1]])
                             if item.is_dir() else item.path for item in items)
        except OSError:
            continue
    return found
