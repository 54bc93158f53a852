"""Reads: which config values a step read, so that it reruns only when one of those values changes.

A key path keeps the type of each key (YAML's `{0: 1.0, 1: 5.0}` has the integer keys 0 and 1, and `1 in
params["class_weight"]` asks for the integer), so that a read means next time what it meant when recorded.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from mlops.common import secrets
from mlops.common.canonical import canonical
from mlops.common.secrets import MASK, secret_path, shows_secret
from mlops.plan.steps import MISSING

SECRET_DIGEST = "__mlops_secret_hmac__"  # a keyed digest (common.secrets.digest)
MAPPING = {"__mlops_mapping__": True}  # a read that saw a mapping, whose content is read key by key
PRESENT = {"__mlops_present__": True}  # a membership test that found the key (`key in params`)
ITEMS = "__mlops_items__"  # a mapping with keys other than strings, kept as [key, value] pairs
Key = str | int | float | bool | None  # a key as JSON keeps it in a key path, its type included


class Reads:
    """The config values one step read: by key path, each value, and each key set it listed."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.keys: dict[str, list[Key]] = {}

    def value(self, path: tuple[Key, ...], value: Any) -> None:
        """Record that the value at `path` was read; seeing that it is a mapping, or that it is there, never
        replaces a value read, and seeing it is there never replaces seeing that it is a mapping."""
        encoded = _encode(path)
        before = self.values.get(encoded)
        if (value is PRESENT and encoded in self.values) or (value is MAPPING and before not in (None, PRESENT)):
            return
        self.values[encoded] = stored_value(path, value)

    def key_set(self, path: tuple[Key, ...], keys: list[Any]) -> None:
        """Record that the keys of the mapping at `path` were listed."""
        self.keys[_encode(path)] = kept_keys(path, keys)

    def to_json(self) -> dict[str, Any]:
        """Return the record as JSON-safe data."""
        return {"values": self.values, "keys": self.keys}


class TrackedParams(Mapping[str, Any]):
    """A read-only view of a step's config section that records every value read through it."""

    def __init__(self, data: Mapping[str, Any], reads: Reads, path: tuple[Key, ...] = ()) -> None:
        self._data = data
        self._reads = reads
        self._path = path

    def __getitem__(self, key: Any) -> Any:
        path = (*self._path, as_key(self._own(key)))
        if key not in self._data:
            self._reads.value(path, MISSING)
            raise KeyError(key)
        value = self._data[key]
        if isinstance(value, Mapping):
            self._reads.value(path, MAPPING)  # what it is counts (isinstance), its content as it is read
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
        found = key in self._data
        self._reads.value((*self._path, as_key(self._own(key))), PRESENT if found else MISSING)
        return found

    def _own(self, key: Any) -> Any:
        """Return the section's own key that `key` finds: Python finds the key 1.0 or True by 1, and the read
        is of that key, of its type."""
        if isinstance(key, str) or key not in self._data:
            return key
        return next((own for own in self._data if own == key), key)

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
        return repr(self.to_dict())  # printing or formatting the section reads all of it

    def __str__(self) -> str:
        return str(self.to_dict())


def stored_value(path: tuple[Key, ...], value: Any) -> Any:
    """Return what the state keeps of a read value: the value with every secret-looking one, at any depth,
    as a digest (the state must never hold a secret; a digest still tells whether it changed)."""
    if value is MISSING or value is MAPPING or value is PRESENT:
        return value
    if secret_path(path) or shows_secret(value):
        return _digest(value) if value not in (None, "") else value
    if isinstance(value, Mapping):
        items = [(key, stored_value((key,), item)) for key, item in value.items()]
        if all(isinstance(key, str) for key, _ in items):
            return dict(items)
        return {ITEMS: sorted(([as_key(key), item] for key, item in items), key=lambda pair: _order(pair[0]))}
    if isinstance(value, (list, tuple)):
        return [stored_value((), item) for item in value]
    return value


def as_key(key: Any) -> Key:
    """Return a key as a key path keeps it: JSON's scalars as they are (their type counts), anything else as text."""
    return key if key is None or isinstance(key, (str, int, float, bool)) else str(key)


def key_list(keys: Any) -> list[Key]:
    """Return a mapping's keys as a listing of them is kept: typed, in an order that does not depend on the YAML's."""
    return sorted((as_key(key) for key in keys), key=_order)


def kept_keys(path: tuple[Key, ...], keys: Any) -> Any:
    """Return what the state keeps of a listing of keys: under a secret-looking key, a digest of them all; else
    each key, a key that shows a secret as its digest."""
    listed = key_list(keys)
    return _digest(listed) if secret_path(path) else [_kept_key(key) for key in listed]


def _kept_key(key: Key) -> Any:
    """Return a key as a key path keeps it: a key that shows a secret (a lookup by a token) as its digest."""
    return _digest(key) if shows_secret(key) else key


def _order(key: Key) -> tuple[str, str]:
    return type(key).__name__, repr(key)


def _digest(value: Any) -> dict[str, str]:
    blob = canonical(value).encode()
    return {SECRET_DIGEST: secrets.digest(b"mlops-secret:" + blob)}


def changes(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Return (key path, old, new) for each recorded read whose value differs in `current`."""
    found = []
    for encoded, old in recorded.get("values", {}).items():
        path = _decode(encoded)
        now = lookup(current, path)
        if old == MAPPING and isinstance(now, Mapping):
            new: Any = MAPPING
        elif old == PRESENT:
            new = MISSING if now is MISSING else PRESENT
        else:
            new = stored_value(path, now)
        if not same(old, new):
            found.append((dotted(path), old, new))
    for encoded, old_keys in recorded.get("keys", {}).items():
        path = _decode(encoded)
        node = lookup(current, path)
        new_keys = kept_keys(path, node) if isinstance(node, Mapping) else MISSING
        if not same(old_keys, new_keys):
            found.append((dotted(path) + " (its keys)", old_keys, new_keys))
    return found


def dotted(path: tuple[Key, ...]) -> str:
    """Return a key path as people write it: its keys joined with dots."""
    return ".".join(MASK if isinstance(part, dict) else str(part) for part in path)


def same(old: Any, new: Any) -> bool:
    """Say whether two recorded values are the same as JSON keeps them, types included (1, 1.0, true differ;
    NaN equals NaN; a tuple is a list)."""
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        return len(old) == len(new) and all(same(a, b) for a, b in zip(old, new, strict=True))
    if type(old) is not type(new):
        return False
    if isinstance(old, dict):
        return old.keys() == new.keys() and all(same(item, new[key]) for key, item in old.items())
    if isinstance(old, float) and old != old:
        return bool(new != new)  # NaN
    return bool(old == new)


def lookup(data: Any, path: tuple[Key, ...]) -> Any:
    """Return the value at `path` in nested mappings, or MISSING; each key matches a key of its own type only
    (the integer key 1 is not the text "1", nor True)."""
    for part in path:
        if isinstance(part, dict):  # a key kept as its digest: the key that has it
            found = [key for key in data if _kept_key(as_key(key)) == part] if isinstance(data, Mapping) else []
            if not found:
                return MISSING
            part = found[0]
        if not isinstance(data, Mapping) or part not in data:
            return MISSING
        if not isinstance(part, str) and not any(type(key) is type(part) and key == part for key in data):
            return MISSING  # an equal key of another type (1 and 1.0, 1 and True)
        data = data[part]
    return data


def _encode(path: tuple[Key, ...]) -> str:
    return json.dumps([_kept_key(part) for part in path])


@functools.lru_cache(maxsize=4096)
def _decode(encoded: str) -> tuple[Key, ...]:
    return tuple(json.loads(encoded))


def shown(value: Any) -> Any:
    """Return a recorded value for people to read: every secret's digest shown as the mask."""
    if isinstance(value, dict):
        if SECRET_DIGEST in value:
            return MASK
        return {key: shown(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shown(item) for item in value]
    return value


def shown_reads(reads: Mapping[str, Any]) -> dict[str, Any]:
    """Return a step's recorded reads as {dotted key: value}, secrets masked (MISSING for an absent key);
    that a section was a mapping goes without saying (its keys read are listed)."""
    return {dotted(_decode(encoded)): shown(value) for encoded, value in reads.get("values", {}).items()
            if value != MAPPING}
