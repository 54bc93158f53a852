"""Which code a step function may run: walk its imports through the project, without importing anything."""

from __future__ import annotations

import importlib.metadata
import os
import site
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mlops.plan.functions import Found, find_module, step_function
from mlops.run.source import STAR, ModuleCode, Part

Reader = Callable[[str, str], ModuleCode | None]  # (file, module name) -> its code, None if it does not parse


@dataclass
class Closure:
    """Each project file a step may run, with the names of it used (None: all of it), and the
    third-party top-level modules imported on the way."""

    used: dict[str, set[str] | None] = field(default_factory=dict)
    tops: set[str] = field(default_factory=set)


def closure(fn: str, read: Reader) -> Closure:
    """Return the closure of the step function `fn` (dotted), reading modules with `read`."""
    found = step_function(fn)
    module, first = (found.module, found.attributes[0]) if found else (fn.rpartition(".")[0], fn.rpartition(".")[2])
    result = Closure()
    waiting: list[tuple[str, str | None]] = [(module, first)]
    seen: set[tuple[str, str | None]] = set()
    while waiting:
        name, only = waiting.pop()
        if (name, only) in seen:
            continue
        seen.add((name, only))
        located = locate(name)
        if located is None:
            if _third_party(name):
                result.tops.add(name.partition(".")[0])
            continue
        parents = name.split(".")  # importing a module runs its packages' __init__.py first
        waiting.extend((".".join(parents[:end]), None) for end in range(1, len(parents)))
        if located.origin is None:
            continue
        origin = located.origin
        if only == STAR:  # every public name, and for a package each of its modules
            waiting.extend((f"{name}.{sub}", None) for sub in _submodules(located))
            only = None
        before = result.used.get(origin, set())
        now = None if only is None or before is None else {*before, only}
        if origin in result.used and now == before:
            continue
        result.used[origin] = now
        code = read(origin, name)
        waiting.extend(imported for part in parts(code, now) for imported in part.imports)
    return result


def parts(code: ModuleCode | None, used: set[str] | None) -> list[Part]:
    """Return the parts of a module that using these names of it (None: all) may run."""
    if code is None:
        return []
    return code.whole() if used is None else code.used_by(sorted(used))


@cache
def locate(name: str) -> Found | None:
    """Return module `name` when it is the project's (a file or namespace package inside it), else None."""
    found = find_module(name)
    if found is None or not _is_local(found):
        return None
    if found.origin is not None and not os.path.isfile(found.origin):
        return None
    return found


@cache
def _third_party(name: str) -> bool:
    """Say whether `name` is an installed module outside the project and the standard library."""
    top = name.partition(".")[0]
    found = find_module(top)
    if found is None or _is_local(found):
        return False
    return top not in sys.stdlib_module_names and top not in sys.builtin_module_names


def _is_local(found: Found) -> bool:
    """Say whether a module is code to track by its content: the project's own files, and modules no installed
    distribution provides (a folder on PYTHONPATH), links unresolved; installed distributions (an editable
    install too, and a virtual environment kept in the project) are tracked by their version instead."""
    where = found.origin or next(iter(found.folders or ()), None)
    if not where or (not os.path.isabs(where) and not os.path.exists(where)):
        return False
    path = Path(os.path.abspath(where))
    if installed(str(path)):
        return False
    return path.is_relative_to(Path(os.path.abspath(Path.cwd()))) or found.name.partition(".")[0] not in _distributed()


def installed(path: str) -> bool:
    """Say whether a file lies in the folders installed packages and the standard library live in (links
    unresolved)."""
    return any(Path(os.path.abspath(path)).is_relative_to(root) for root in _installed())


@cache
def _installed() -> tuple[Path, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *site.getsitepackages(), site.getusersitepackages()}
    return tuple(Path(os.path.abspath(root)) for root in roots if root)


@cache
def _distributed() -> frozenset[str]:
    """Return the top-level modules that installed distributions provide (asked only for code outside both the
    project and the installed folders)."""
    return frozenset(importlib.metadata.packages_distributions())


def _submodules(found: Found) -> list[str]:
    """Return the names of a package's modules and subpackages, from its folders."""
    names = []
    for folder in found.folders or ():
        for entry in sorted(os.listdir(folder)):
            stem, suffix = os.path.splitext(entry)
            if (suffix == ".py" and stem != "__init__") or (not suffix and os.path.isdir(os.path.join(folder, entry))):
                names.append(stem)
    return names
