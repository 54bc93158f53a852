"""Step functions named in config: only from allowed modules, checked by reading the source, not importing it."""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
from pathlib import Path

from mlops.common.errors import ConfigError

DEFAULT_STEP_MODULES = ("mlops.pipelines",)


def source_file(dotted: str, where: object, root: Path, allowed: tuple[str, ...]) -> str:
    """Return the source file of the step function `dotted`, refusing modules outside the allowlist."""
    module, _, function = dotted.rpartition(".")
    try:
        origin, defined = module_functions(module)
    except SyntaxError as error:
        place = shown_path(error.filename or module, root)
        raise ConfigError(f"{place}:{error.lineno}: syntax error ({error.msg}) in the module of {where} "
                          f"({dotted}); fix it, then run again") from None
    shown = shown_path(origin, root) if origin else ""
    local = bool(shown) and not os.path.isabs(shown)
    if not local and not any(module == prefix or module.startswith(prefix + ".") for prefix in allowed):
        raise ConfigError(f"{where}: step functions may come only from this project's modules and "
                          f"{', '.join(allowed)}, not '{module}'; to allow it, add it to "
                          "[tool.mlops] step_modules in pyproject.toml")
    if origin is None:
        raise ConfigError(f"{where}: no Python module '{module}' to take '{function}' from")
    if function not in defined:
        choices = ", ".join(sorted(name for name in defined if not name.startswith("_")))
        raise ConfigError(f"{where}: module '{module}' defines no function '{function}'; choose one of: {choices}")
    return shown


@functools.cache
def shown_path(origin: str, root: Path) -> str:
    """Return a module's file relative to the project when it is inside it, else absolute."""
    source, base = Path(origin).resolve(), root.resolve()
    # Inside the project, a relative path keeps doit's state valid when the project folder moves.
    return str(source.relative_to(base)) if source.is_relative_to(base) else str(source)


@functools.cache
def module_functions(module: str) -> tuple[str | None, frozenset[str]]:
    """Return a module's source file and the functions it defines, read without importing it."""
    # Model code imports heavy libraries: parsing its file is much cheaper than importing it.
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None, frozenset()
    tree = ast.parse(Path(spec.origin).read_bytes(), spec.origin)
    return spec.origin, frozenset(node.name for node in tree.body
                                  if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))
