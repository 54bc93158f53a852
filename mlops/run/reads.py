"""Reads: which config values a step read, so that it reruns only when one of those values changes."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from mlops.config.model import secret_path
from mlops.plan.steps import MISSING

SECRET_DIGEST = "__mlops_secret_sha256__"


class Reads:
    """The config values one step read: by key path, each value, and each key set it listed."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.keys: dict[str, list[str]] = {}

    def value(self, path: tuple[str, ...], value: Any) -> None:
        """Record that the value at `path` was read."""
        self.values[_encode(path)] = copy.deepcopy(stored_value(path, value))

    def key_set(self, path: tuple[str, ...], keys: list[str]) -> None:
        """Record that the keys of the mapping at `path` were listed."""
        self.keys[_encode(path)] = sorted(keys)

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON-safe data."""
        return {"values": self.values, "keys": self.keys}


class TrackedParams(Mapping[str, Any]):
    """A read-only view of a step's config section that records every value read through it."""

    def __init__(self, data: Mapping[str, Any], reads: Reads, path: tuple[str, ...] = ()) -> None:
        self._data = data
        self._reads = reads
        self._path = path

    def __getitem__(self, key: str) -> Any:
        path = (*self._path, str(key))
        if key not in self._data:
            self._reads.value(path, MISSING)
            raise KeyError(key)
        value = self._data[key]
        if isinstance(value, Mapping):
            return TrackedParams(value, self._reads, path)
        self._reads.value(path, value)
        return copy.deepcopy(value)

    def __iter__(self) -> Iterator[str]:
        self._reads.key_set(self._path, list(self._data))
        return iter(list(self._data))

    def __len__(self) -> int:
        self._reads.key_set(self._path, list(self._data))
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        path = (*self._path, str(key))
        self._reads.value(path, self._data.get(str(key), MISSING))
        return key in self._data

    def to_dict(self) -> dict[str, Any]:
        """Return a plain copy of this section (which counts as reading all of it)."""
        self._reads.value(self._path, self._data)
        return copy.deepcopy(dict(self._data))

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return self.to_dict()

    def __copy__(self) -> dict[str, Any]:
        return self.to_dict()

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (self.to_dict(),)

    def __repr__(self) -> str:
        return f"TrackedParams({self._data!r})"


def stored_value(path: tuple[str, ...], value: Any) -> Any:
    """Return what the state keeps of a read value: the value, or a digest if its key looks secret."""
    if value not in (None, "", MISSING) and secret_path(path):
        # The state must never hold a secret; a digest still tells whether it changed.
        blob = json.dumps(value, sort_keys=True, default=str).encode()
        return {SECRET_DIGEST: hashlib.sha256(b"mlops-secret:" + blob).hexdigest()}
    return value


def changes(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Return (key path, old, new) for each recorded read whose value differs in `current`."""
    found = []
    for encoded, old in recorded.get("values", {}).items():
        path = _decode(encoded)
        new = stored_value(path, lookup(current, path))
        if new != old and _normal(new) != old:
            found.append((".".join(path), old, new))
    for encoded, old_keys in recorded.get("keys", {}).items():
        path = _decode(encoded)
        node = lookup(current, path)
        new_keys = sorted(node) if isinstance(node, Mapping) else MISSING
        if new_keys != old_keys:
            found.append((".".join(path) + " (its keys)", old_keys, new_keys))
    return found


def lookup(data: Any, path: tuple[str, ...]) -> Any:
    """Return the value at `path` in nested mappings, or MISSING."""
    for part in path:
        if not isinstance(data, Mapping) or part not in data:
            return MISSING
        data = data[part]
    return data


def _normal(value: Any) -> Any:
    # Compare as stored: JSON turns tuples into lists and keeps key order irrelevant for equality.
    return json.loads(json.dumps(value))


def _encode(path: tuple[str, ...]) -> str:
    return json.dumps(list(path))


@functools.lru_cache(maxsize=4096)
def _decode(encoded: str) -> tuple[str, ...]:
    return tuple(json.loads(encoded))
