"""The project's OmegaConf resolvers: ${pyproject:...}, and oc.env noting which variables it reads."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.resolvers import oc

from mlops.common import identity
from mlops.common.files import read_toml

PYPROJECT = "pyproject.toml"


def pyproject_value(dotted_key: str, file: str = PYPROJECT) -> Any:
    """Return the value at `dotted_key` (e.g. project.version) in the project's pyproject.toml."""
    for reads in _env_reads:
        reads.files.setdefault(file, identity.record(file))  # before reading: an edit made after is a miss
    try:
        node: Any = read_toml(Path(file))
    except FileNotFoundError:
        raise ValueError(f"{file} not found in {Path.cwd().name}/; run from the project folder") from None
    for part in dotted_key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{file} has no key '{dotted_key}'")
        node = node[part]
    return node


@dataclass
class EnvReads:
    """The environment variables ${oc.env:...} read, those it found unset with no default, and the
    files ${pyproject:...} read, with their stats before reading."""

    names: set[str] = field(default_factory=set)
    unset: list[str] = field(default_factory=list)
    files: dict[str, list[int] | None] = field(default_factory=dict)


_env_reads: list[EnvReads] = []


@contextlib.contextmanager
def noting_env() -> Iterator[EnvReads]:
    """Collect what ${oc.env:...} reads inside the block."""
    reads = EnvReads()
    _env_reads.append(reads)
    try:
        yield reads
    finally:
        _env_reads.remove(reads)


def noted_env(key: str, *default: Any) -> Any:
    """OmegaConf's oc.env, noting which variable was read (the config cache depends on it)."""
    for reads in _env_reads:
        reads.names.add(key)
    try:
        return oc.env(key, *default)
    except KeyError:
        for reads in _env_reads:
            reads.unset.append(key)
        raise


def register() -> None:
    """Register the project's resolvers with OmegaConf; calling it again changes nothing."""
    if not OmegaConf.has_resolver("pyproject"):
        OmegaConf.register_new_resolver("pyproject", pyproject_value)
        OmegaConf.register_new_resolver("oc.env", noted_env, replace=True)
