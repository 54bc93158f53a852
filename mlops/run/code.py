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
import py_compile
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import xxhash

from mlops.common.files import parse_json, settings, write_atomically
from mlops.plan.functions import shown_path
from mlops.run.source import ModuleCode, Part, digest_of, read_module

PYTHON = "python"
VERSIONS_FILE = ".versions.json"


@dataclass(frozen=True)
class Read:
    """A project file as this process read it: its stat then, and its code."""

    stat: tuple[int, int, int]
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


def checked_bytecode(paths: list[str]) -> None:
    """Make Python check the source of each file against its bytecode cache on import (PEP 552).

    A timestamp cache is stale after a same-size edit within the second it was written; a
    checked-hash one is never used for other source. With bytecode writing off, stale caches go.
    """
    for path in paths:
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


@cache
def _state(fn: str, cache_dir: str) -> tuple[tuple[str, str], ...]:
    files, tops = _closure(fn)
    state = dict(sorted(files.items()))
    if settings(Path.cwd()).get("track_versions", True) is not False:
        state.update(_versions(sorted(tops), Path(cache_dir)))
        state[PYTHON] = platform.python_version()
    return tuple(state.items())


def _closure(fn: str, fresh: bool = False) -> tuple[dict[str, str], set[str]]:
    """Return the digests of the project files `fn` may run and the third-party top-level modules they import."""
    module, _, function = fn.rpartition(".")
    files: dict[str, str] = {}
    tops: set[str] = set()
    waiting: list[tuple[str, str | None]] = [(module, function)]
    seen: set[tuple[str, str | None]] = set()
    while waiting:
        name, only = waiting.pop()
        if (name, only) in seen:
            continue
        seen.add((name, only))
        parents = name.split(".")
        waiting.extend((".".join(parents[:end]), None) for end in range(1, len(parents)))
        origin, local = _locate(name)
        if origin is None:
            if local is False:
                tops.add(name.partition(".")[0])
            continue
        read = _read(origin, name, fresh)
        parts = _parts(read, only)
        files[shown_path(origin, Path.cwd())] = digest_of(parts) if read.code else read.raw
        waiting.extend((imported, None) for part in parts for imported in part.imports)
    return files, tops


def _parts(read: Read, function: str | None) -> list[Part]:
    if read.code is None:
        return []
    return read.code.used_by(function) if function else read.code.whole()


def _read(origin: str, name: str, fresh: bool) -> Read:
    info = os.stat(origin)
    stat = (info.st_mtime_ns, info.st_size, info.st_ino)
    first = _first_reads.get(origin)
    if first is not None and (not fresh or first.stat == stat):
        return first
    source = Path(origin).read_bytes()
    raw = xxhash.xxh3_128_hexdigest(source)
    code = None
    if origin.endswith(".py"):
        with contextlib.suppress(SyntaxError, ValueError):
            # Relative imports start from the package: the module's own name if it is one.
            package = name if Path(origin).name == "__init__.py" else name.rpartition(".")[0]
            code = read_module(source, origin, package)
    read = Read(stat, code, raw)
    if first is None:
        _first_reads[origin] = read
    return read


@cache
def _locate(name: str) -> tuple[str | None, bool | None]:
    """Return (a project file of module `name`, None) or (None, False) for third-party, (None, None) for neither."""
    top = name.partition(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return None, None
    spec = _find(name)
    if spec is None:
        top_spec = _find(top)
        return (None, None) if top_spec is None or _is_local(top_spec) else (None, False)
    if not _is_local(spec):
        return None, False
    if not spec.origin or not os.path.isfile(spec.origin):
        return None, None  # a namespace package: no code of its own
    return spec.origin, None


def _find(name: str) -> importlib.machinery.ModuleSpec | None:
    """Find a module's spec without importing it (nor its parent packages)."""
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
        for end in range(2, len(parts) + 1):
            if spec is None or spec.submodule_search_locations is None:
                return None
            locations = list(spec.submodule_search_locations)
            spec = importlib.machinery.PathFinder.find_spec(".".join(parts[:end]), locations)
    except (ImportError, ValueError):
        return None
    return spec


def _is_local(spec: importlib.machinery.ModuleSpec) -> bool:
    """Say whether a module's file lies in the project (not in an environment the project holds)."""
    folders = spec.submodule_search_locations or []
    where = spec.origin if spec.origin and spec.has_location else next(iter(folders), None)
    if not where:
        return False
    path = Path(where).resolve()
    prefixes = {Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return path.is_relative_to(Path.cwd().resolve()) and not any(path.is_relative_to(p) for p in prefixes)


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
    """Return the cached versions by top-level module, valid while the folders of installed packages stay the same."""
    sites = {}
    for entry in sys.path:
        with contextlib.suppress(OSError):
            if entry and not Path(entry).resolve().is_relative_to(Path.cwd().resolve()):
                sites[entry] = os.stat(entry).st_mtime_ns
    with contextlib.suppress(OSError, ValueError, TypeError):
        cached = parse_json((cache_dir / VERSIONS_FILE).read_text())
        if isinstance(cached, dict) and cached.get("sites") == sites and isinstance(cached.get("modules"), dict):
            return cached
    return {"sites": sites, "modules": {}}
