"""Which code a step function may run: walk its imports through the project, without importing anything."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from mlops.plan.functions import Found, find_module, step_function
from mlops.run.locations import tracked_as_source
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
    if found is None or not tracked_as_source(found):
        return None
    if found.origin is not None and not os.path.isfile(found.origin):
        return None
    return found


@cache
def _third_party(name: str) -> bool:
    """Say whether `name` is an installed module outside the project and the standard library."""
    top = name.partition(".")[0]
    found = find_module(top)
    if found is None or tracked_as_source(found):
        return False
    return top not in sys.stdlib_module_names and top not in sys.builtin_module_names


def _submodules(found: Found) -> list[str]:
    """Return the names of a package's modules and subpackages, from its folders."""
    names = []
    for folder in found.folders or ():
        for entry in sorted(os.listdir(folder)):
            stem, suffix = os.path.splitext(entry)
            if (suffix == ".py" and stem != "__init__") or (not suffix and os.path.isdir(os.path.join(folder, entry))):
                names.append(stem)
    return names
