"""One text per value: JSON in which a mapping's keys keep their type and order does not count.

YAML gives mappings integer, float, boolean and null keys (`{0: 1.0, 1: 5.0}`); JSON would write the
key 1 and the key "1" alike, and cannot sort keys of mixed types. A mapping with a key other than text
is written as its sorted [key, value] pairs instead, so that two values have the same text only when
they are equal, types of keys included.
"""

from __future__ import annotations

import json
from typing import Any

ITEMS = "\u0000items"  # marks a mapping kept as its pairs (no config key holds a NUL)


def canonical(value: Any) -> str:
    """Return the one JSON text of a value made of mappings, lists and scalars (others by their repr)."""
    return json.dumps(_plain(value), sort_keys=True, default=repr)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {key: _plain(item) for key, item in value.items()}
        pairs = [[type(key).__name__, repr(key), _plain(item)] for key, item in value.items()]
        return {ITEMS: sorted(pairs, key=lambda pair: pair[:2])}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
