"""Files written atomically and TOML read once per version of the file."""

from __future__ import annotations

import functools
import gc
import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from mlops.common import identity
from mlops.common.errors import ConfigError


def write_atomically(path: str | os.PathLike[str], text: str, durable: bool = False) -> None:
    """Write `text` through a temporary file and a rename, so readers see the old or the new content."""
    folder = os.path.dirname(os.fspath(path)) or "."
    os.makedirs(folder, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(staging, path)
    except BaseException:
        os.unlink(staging)
        raise


def parse_json(text: str) -> Any:
    """Parse JSON text; the cyclic garbage collector pauses meanwhile.

    A large document (doit's state at a thousand pipelines, the digest cache) is built of many
    containers that all stay alive; collecting while they are made only rescans every object the
    process holds, again and again (a third of a no-op run's time at a thousand pipelines).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return json.loads(text)
    finally:
        if enabled:
            gc.enable()


def read_toml(path: Path) -> dict[str, Any]:
    """Return a TOML file parsed (FileNotFoundError if it is missing); an edited file is read again."""
    resolved = path.resolve()
    kept = identity.record(resolved)
    if not kept:  # racy (just written): parsed now, not kept
        return _parse(resolved)
    return _parsed(resolved, tuple(kept))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, kept: tuple[int, ...]) -> dict[str, Any]:
    # The file's identity is part of the cache key, so that an edited file is parsed again.
    return _parse(path)


def _parse(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path.name}: not valid TOML ({error})") from None


def project_toml(root: Path) -> dict[str, Any]:
    """Return the project's pyproject.toml parsed (empty if there is none)."""
    try:
        return read_toml(root / "pyproject.toml")
    except FileNotFoundError:
        return {}


def settings(root: Path) -> dict[str, Any]:
    """Return the project's `[tool.mlops]` table from pyproject.toml (empty if there is none)."""
    table = project_toml(root).get("tool", {}).get("mlops", {})
    return table if isinstance(table, dict) else {}
