"""The code a step runs: its function and the project code it uses, the distributions it imports, Python.

A step's code state maps each project file it may run to a digest of that code by meaning (see
`source`), each third-party distribution its project code imports to its version, and "python"
to the interpreter's version. A process keeps the code as it first read it, before importing
anything: what it records is what it ran, and an edit made after that is caught (`changed_files`).
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import xxhash

from mlops.common import identity
from mlops.common.files import parse_json, settings, write_atomically
from mlops.plan.functions import shown_path
from mlops.run.closure import closure, parts
from mlops.run.locations import version_sources
from mlops.run.source import ModuleCode, digest_of, read_module

PYTHON = "python"
VERSIONS_FILE = ".versions.json"


@dataclass(frozen=True)
class Read:
    """A project file as this process read it: its identity then (None: racy, see common.identity), and its code."""

    stat: list[int] | None
    code: ModuleCode | None  # None: not Python source that parses; `raw` stands for it
    raw: str


_first_reads: dict[str, Read] = {}  # by absolute path: the code this process runs


def code_state(fn: str, cache_dir: str) -> dict[str, str]:
    """Return the code state of the step function `fn` (dotted), as this process first read it."""
    return dict(_state(fn, cache_dir))


def changed_files(state: dict[str, str], fn: str) -> list[str]:
    """Return the project files of a code state whose code on disk is no longer what this process read."""
    files, _ = _closure(fn, fresh=True)
    return [path for path in sorted(files) if state.get(path) != files[path]]


def project_files(fn: str) -> list[str]:
    """Return the project's Python files a step function may run (its module, what it imports, packages)."""
    return sorted(_closure(fn)[0])


@cache
def _state(fn: str, cache_dir: str) -> tuple[tuple[str, str], ...]:
    files, tops = _closure(fn)
    state = dict(sorted(files.items()))
    if settings(Path.cwd()).get("track_versions", True) is not False:
        state.update(_versions(sorted(tops), Path(cache_dir)))
        state[PYTHON] = platform.python_version()
    return tuple(state.items())


_walks: dict[tuple[str, bool], tuple[dict[str, list[int] | None], tuple[dict[str, str], set[str]]]] = {}


def _closure(fn: str, fresh: bool = False) -> tuple[dict[str, str], set[str]]:
    """Return the digests of the project files `fn` may run and the third-party top-level modules they import:
    walked again only when a file the last walk read has another identity (a step's code is asked for twice a step)."""
    walked = _walks.get((fn, fresh))
    if walked is not None and identity.unchanged(walked[0]):
        return walked[1]
    reads: dict[str, Read] = {}

    def read(origin: str, name: str) -> ModuleCode | None:
        reads[origin] = _read(origin, name, fresh)
        return reads[origin].code

    found = closure(fn, read)
    files = {}
    for origin, used in found.used.items():
        code = reads[origin]
        files[shown_path(origin, Path.cwd())] = digest_of(parts(code.code, used)) if code.code else code.raw
    _walks[(fn, fresh)] = ({origin: read.stat for origin, read in reads.items()}, (files, found.tops))
    return files, found.tops


def _read(origin: str, name: str, fresh: bool) -> Read:
    info = os.stat(origin)
    first = _first_reads.get(origin)
    if first is not None and (not fresh or identity.same(first.stat, identity.of(info))):
        return first
    stat = identity.recorded(info)
    source = Path(origin).read_bytes()
    raw = xxhash.xxh3_128_hexdigest(source)
    code = None
    if origin.endswith(".py"):
        with contextlib.suppress(SyntaxError, ValueError, RecursionError):  # then its bytes stand for it
            # Relative imports start from the package: the module's own name if it is one.
            package = name if Path(origin).name == "__init__.py" else name.rpartition(".")[0]
            code = read_module(source, origin, package)
    read = Read(stat, code, raw)
    if first is None:
        _first_reads[origin] = read
    return read


def _versions(tops: list[str], cache_dir: Path) -> dict[str, str]:
    """Return the version of each distribution that provides one of these top-level modules."""
    cached = _versions_cache(cache_dir)
    missing = [top for top in tops if top not in cached["modules"]]
    if missing:
        provided = importlib.metadata.packages_distributions()
        for top in missing:
            cached["modules"][top] = {dist: _version(dist) for dist in sorted(set(provided.get(top, [])))}
        with contextlib.suppress(OSError):
            write_atomically(cache_dir / VERSIONS_FILE, json.dumps(cached))
    return {dist: version for top in tops for dist, version in cached["modules"][top].items()}


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _versions_cache(cache_dir: Path) -> dict[str, Any]:
    """Return the cached versions by top-level module, valid while every file and folder the versions are read
    from keeps its identity (`locations.version_sources`: a virtual environment kept in the project counts like
    any other)."""
    sites = {path: identity.record(path) for path in version_sources()}
    with contextlib.suppress(OSError, ValueError, TypeError):
        cached = parse_json((cache_dir / VERSIONS_FILE).read_text())
        if (isinstance(cached, dict) and None not in sites.values() and cached.get("sites") == sites
                and isinstance(cached.get("modules"), dict)):
            return cached
    return {"sites": sites, "modules": {}}
