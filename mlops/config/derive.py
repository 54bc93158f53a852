"""A config for value overrides, derived from the cached config of the other overrides without Hydra.

`doit train:p_0 pipelines.p_0.train.alpha=0.3` is the loop a data scientist runs all day. Its
overrides differ from every cached entry, yet the config it asks for is the cached config of the
rest of the command line with one value replaced, when

- the value is a plain scalar (a number, true/false/null, a word or a date) that Hydra's grammar
  reads the same way as `scalar` below;
- the key exists and holds a scalar, and is not secret-looking;
- no interpolation in any config file names a part of the key (so no other value is computed
  from it), and no resolver that can reach a key by a computed name (`oc.select`, `oc.decode`,
  ...) is used.

Anything else composes with Hydra as before; `tests/test_derive.py` compares the two ways.

Composing itself keeps the pipeline sections that resolve to themselves out of OmegaConf (`plain_sections`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlops.config.model import PIPELINES
from mlops.config.words import secret_override

# Resolvers whose results never depend on a value override: env variables, pyproject.toml and
# Hydra's runtime (which sees only the group overrides). Any other resolver turns derivation off.
BLIND_RESOLVERS = frozenset({"oc.env", "pyproject", "hydra"})
# Hydra's grammar reads keys and unquoted words in ASCII; Python's \w and \d would also take other scripts.
KEY = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", re.ASCII)
WORD = re.compile(r"[A-Za-z_]\w*")
INT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
FLOAT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)\.[0-9]+")
TEXT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*|\d{4}-\d{2}-\d{2}", re.ASCII)
SPECIAL = frozenset({"null", "true", "false", "inf", "nan"})  # words Hydra reads as other types, any case
UNPARSED = object()


def config_groups(conf_dir: Path) -> set[str]:
    """Return the names of the config groups (the folders of conf/ but pipelines/)."""
    try:
        with os.scandir(conf_dir) as entries:
            return {entry.name for entry in entries if entry.is_dir()} - {PIPELINES}
    except OSError:
        return set()


def for_hydra_compose(key: str, groups: set[str]) -> bool:
    """Say whether an override's key goes to Hydra's compose: a group choice (env=prod) or a hydra.* setting.
    The others set values, applied once the pipeline files are attached."""
    head = re.split(r"[./@]", key.lstrip("+~"), maxsplit=1)[0]
    return head in groups or head == "hydra"


def split_values(overrides: Sequence[str], groups: set[str]) -> tuple[list[str], list[str]]:
    """Return the overrides Hydra composes with, and the value overrides, each in order."""
    composed = [o for o in overrides if for_hydra_compose(o.partition("=")[0], groups)]
    return composed, [o for o in overrides if not for_hydra_compose(o.partition("=")[0], groups)]


def interpolated_words(texts: Iterable[str]) -> list[str]:
    """Return every word inside a `${...}` of `texts` (nested ones included), sorted."""
    words: set[str] = set()
    for text in texts:
        start = text.find("${")
        while start != -1:
            end, depth = start + 2, 1
            while end < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                end += 1
            words.update(WORD.findall(text[start:end]))
            start = text.find("${", end)
    return sorted(words)


def scalar(value: str) -> Any:
    """Return the value Hydra's override grammar reads from `value`, or UNPARSED if it is not a plain scalar."""
    lowered = value.lower()
    if lowered in SPECIAL:
        return {"null": None, "true": True, "false": False}.get(lowered, UNPARSED)
    if INT.fullmatch(value):
        with contextlib.suppress(ValueError):  # more digits than Python reads: composing says so
            return int(value)
        return UNPARSED
    if FLOAT.fullmatch(value):
        return float(value)
    return value if TEXT.fullmatch(value) else UNPARSED


def derived_values(values: dict[str, Any], overrides: Sequence[str], interpolated: Iterable[str],
                   resolvers: Iterable[str]) -> dict[str, Any] | None:
    """Return `values` with the value overrides applied, or None if one of them needs Hydra."""
    if not set(resolvers) <= BLIND_RESOLVERS:
        return None
    names = set(interpolated)
    result = values
    for override in overrides:
        key, _, text = override.partition("=")
        value = scalar(text)
        parts = key.split(".")
        if (value is UNPARSED or not KEY.fullmatch(key) or secret_override(override)
                or names.intersection(parts)):
            return None
        replaced = _replaced(result, parts, value)
        if replaced is None:
            return None
        result = replaced
    return result


def _replaced(node: dict[str, Any], parts: list[str], value: Any) -> dict[str, Any] | None:
    """Return a copy of `node` with the scalar at `parts` set to `value` (copies along the path only)."""
    head, rest = parts[0], parts[1:]
    if head not in node:
        return None
    child = node[head]
    if rest:
        if not isinstance(child, dict):
            return None
        replaced = _replaced(child, rest, value)
        return None if replaced is None else {**node, head: replaced}
    if isinstance(child, (dict, list)):
        return None
    return {**node, head: value}


def plain_sections(sections: dict[str, Any], texts: dict[str, str], words: set[str], override_keys: list[str],
                   base_has_pipelines: bool) -> dict[str, Any]:
    """Return the pipeline sections that resolve to themselves, to be kept out of OmegaConf's tree (building
    it costs seconds at a thousand pipelines): a file with no `${`, no `???` and only YAML's plain types,
    which no interpolation and no override can reach (and the base holds no `pipelines:` node)."""
    if PIPELINES in words or base_has_pipelines:
        return {}
    named = {key.split(".")[1] if "." in key else PIPELINES for key in override_keys if key.split(".")[0] == PIPELINES}
    if PIPELINES in named:
        return {}
    return {name: section for name, section in sections.items()
            if name not in words and name not in named and "${" not in texts[name] and _resolves_to_itself(section)}


def _resolves_to_itself(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and _resolves_to_itself(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_resolves_to_itself(item) for item in value)
    return value is None or isinstance(value, (int, float, bool)) or (isinstance(value, str) and value != "???")


def with_plain(values: dict[str, Any], plain: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """Return the resolved values with the plain pipeline sections put back, in the pipeline files' `order`."""
    if not plain:
        return values
    resolved = values.get(PIPELINES) or {}
    names = [*order, *(name for name in resolved if name not in order)]
    merged = {name: plain[name] if name in plain else resolved[name] for name in names
              if name in plain or name in resolved}
    return {**values, PIPELINES: merged}
