"""Step functions named in config: only from allowed modules, checked by reading the source, not importing it.

`fn: package.module.name` names a function, or any callable the module binds at its top level (a
class, `partial(...)`, a re-exported import); `package.module.Class.method` names an attribute of
one. Modules are found without importing them or their packages (model code imports heavy
libraries): `find_module` looks where the import system would.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from mlops.common.errors import ConfigError

DEFAULT_STEP_MODULES = ("mlops.pipelines",)


@dataclass(frozen=True)
class Found:
    """Where a module is: its file (None for a namespace package) and, for a package, its folders."""

    name: str
    origin: str | None
    folders: tuple[str, ...] | None


@dataclass(frozen=True)
class StepFunction:
    """A step function named in config: its module, its file and the attribute path inside the module."""

    module: str
    origin: str
    attributes: tuple[str, ...]


def source_file(dotted: str, where: object, root: Path, allowed: tuple[str, ...]) -> str:
    """Return the source file of the step function `dotted`, refusing modules outside the allowlist."""
    function = step_function(dotted)
    module = function.module if function else dotted.rpartition(".")[0]
    shown = shown_path(function.origin, root) if function else ""
    local = bool(shown) and not os.path.isabs(shown)
    if not local and not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed):
        raise ConfigError(f"{where}: step functions may come only from this project's modules and "
                          f"{', '.join(allowed)}, not '{module}'; to allow it, add it to "
                          "[tool.mlops] step_modules in pyproject.toml")
    if function is None:
        raise ConfigError(f"{where}: no Python module '{module}' to take '{dotted.rpartition('.')[2]}' from")
    try:
        offered, classes = module_names(function.origin, root)
    except SyntaxError as error:
        place = shown_path(error.filename or function.origin, root)
        raise ConfigError(f"{place}:{error.lineno}: syntax error ({error.msg}) in the module of {where} "
                          f"({dotted}); fix it, then run again") from None
    if len(function.attributes) > 2 or (len(function.attributes) == 2 and function.attributes[0] not in classes):
        raise ConfigError(f"{where}: '{dotted}' reaches past the module's own names; name a function the "
                          f"module binds, or a method of a class it defines (module.Class.method)")
    if function.attributes[0] not in offered:
        choices = ", ".join(sorted(name for name in offered if not name.startswith("_"))) or "(none)"
        raise ConfigError(f"{where}: module '{module}' defines no function '{function.attributes[0]}'; "
                          f"choose one of: {choices}")
    return shown


@functools.cache
def step_function(dotted: str) -> StepFunction | None:
    """Split `dotted` into the longest prefix that is a Python module and the attributes after it."""
    parts = dotted.split(".")
    for end in range(len(parts) - 1, 0, -1):
        found = find_module(".".join(parts[:end]))
        if found is not None and found.origin is not None and found.origin.endswith(".py"):
            return StepFunction(found.name, found.origin, tuple(parts[end:]))
        if found is not None:
            return None  # a package without code of its own, or a compiled module: no attribute to read
    return None


@functools.cache
def find_module(name: str) -> Found | None:
    """Find a module's file without importing it or its packages (None if there is none)."""
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    origin = spec.origin if spec.has_location else None
    folders = tuple(spec.submodule_search_locations) if spec.submodule_search_locations is not None else None
    found: Found | None = Found(parts[0], origin, folders)
    for part in parts[1:]:
        found = _child(found, part) if found is not None else None
    return found


def _child(parent: Found, part: str) -> Found | None:
    """Find module `part` in a package's folders, as the path finder would (package, module, namespace)."""
    name, namespace = f"{parent.name}.{part}", []
    for folder in parent.folders or ():
        base = Path(folder) / part
        if (base / "__init__.py").is_file():
            return Found(name, str(base / "__init__.py"), (str(base),))
        if base.with_suffix(".py").is_file():
            return Found(name, str(base.with_suffix(".py")), None)
        if base.is_dir():
            namespace.append(str(base))
    return Found(name, None, tuple(namespace)) if namespace else None


@functools.cache
def shown_path(origin: str, root: Path) -> str:
    """Return a module's file relative to the project when it is inside it, else absolute."""
    # Inside the project, a relative path keeps doit's state valid when the project folder moves. A link
    # in the project to a file elsewhere is the project's: its path is compared before links are resolved.
    for source, base in ((os.path.abspath(origin), os.path.abspath(root)),
                         (os.path.realpath(origin), os.path.realpath(root))):
        if Path(source).is_relative_to(base):
            return str(Path(source).relative_to(base))
    return os.path.abspath(origin)


@functools.cache
def module_names(origin: str, root: Path) -> tuple[frozenset[str], frozenset[str]]:
    """Return the names of a module that may be step functions (its functions and classes, names it takes
    from this project's modules, assigned calls such as partial(...)), and its classes. A name it takes
    from a library is not one: config names the project's steps, not any function."""
    tree = ast.parse(Path(origin).read_bytes(), origin)
    offered: set[str] = set()
    for node in tree.body:
        if _may_be_step(node, root):
            offered.update(_bound(node))
    classes = frozenset(node.name for node in tree.body if isinstance(node, ast.ClassDef))
    return frozenset(offered - {"*"}), classes


def _bound(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).partition(".")[0] for alias in node.names]
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [target.id for target in targets if isinstance(target, ast.Name)]
    return []


def _may_be_step(node: ast.stmt, root: Path) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(node, ast.ImportFrom):  # from this project's own modules, not a library's
        found = find_module(node.module or "") if not node.level else None
        return bool(node.level) or (found is not None and found.origin is not None
                                    and not os.path.isabs(shown_path(found.origin, root)))
    return isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, (ast.Call, ast.Name, ast.Attribute))
