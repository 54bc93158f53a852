"""Custom OmegaConf resolvers, registered once when mlops.config is imported."""

from __future__ import annotations

import contextlib
import functools
import tomllib
from pathlib import Path
from typing import Any, Iterator

from omegaconf import OmegaConf
from omegaconf.resolvers import oc

PYPROJECT = "pyproject.toml"


@functools.lru_cache(maxsize=8)
def _read_toml(path: Path, mtime_ns: int) -> dict[str, Any]:
    # mtime_ns is part of the cache key so an edited file is read again.
    with path.open("rb") as handle:
        return tomllib.load(handle)


def pyproject_value(dotted_key: str, file: str = PYPROJECT) -> Any:
    """Return the value at `dotted_key` (e.g. project.version) in the project's pyproject.toml."""
    path = Path(file)
    try:
        node: Any = _read_toml(path.resolve(), path.stat().st_mtime_ns)
    except FileNotFoundError:
        raise ValueError(f"{file} not found in {Path.cwd().name}/; run from the project folder") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{file} is not valid TOML: {error}") from None
    for part in dotted_key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{file} has no key '{dotted_key}'")
        node = node[part]
    return node


_env_reads: list[set[str]] = []


@contextlib.contextmanager
def tracking_env() -> Iterator[set[str]]:
    """Collect the names of the environment variables that ${oc.env:...} reads inside the block."""
    names: set[str] = set()
    _env_reads.append(names)
    try:
        yield names
    finally:
        _env_reads.remove(names)


def tracked_env(key: str, *default: Any) -> Any:
    """OmegaConf's oc.env, noting which variable was read (the config cache depends on it)."""
    for names in _env_reads:
        names.add(key)
    return oc.env(key, *default)


def register() -> None:
    """Register the project's resolvers with OmegaConf; calling it again changes nothing."""
    if not OmegaConf.has_resolver("pyproject"):
        OmegaConf.register_new_resolver("pyproject", pyproject_value)
        OmegaConf.register_new_resolver("oc.env", tracked_env, replace=True)
