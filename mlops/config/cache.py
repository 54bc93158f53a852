"""Cache of resolved configs, valid while conf/, pyproject.toml, the overrides and the env values it read stay the same.

Composing with Hydra costs seconds at a thousand pipelines; checking this cache costs a stat
per config file. Values read from environment variables never reach the disk: they are
swapped for placeholders when stored and put back, after checking a salted hash, when loaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops.common import identity
from mlops.common.files import parse_json, write_atomically
from mlops.common.secrets import URL_PASSWORD, holds_secret
from mlops.config import derive
from mlops.config.model import CONF_DIR, Config
from mlops.config.words import secret_override

FORMAT = 4
FOLDER = ".mlops/cache"
KEEP = 32
PYPROJECT = "pyproject.toml"
# Resolvers whose results depend only on what the cache key covers (files, overrides, env values). Not oc.decode
# nor oc.create: the text they parse may hold any interpolation (${now:...}), seen only when it resolves; and
# ${hydra:...} only for its stable keys (see compose.STABLE_HYDRA).
PURE_RESOLVERS = frozenset({"oc.env", "pyproject", "hydra", "oc.select", "oc.dict.keys", "oc.dict.values",
                            "oc.deprecated"})
CODE = ("mlops.config.compose", "mlops.config.resolvers", "hydra", "omegaconf")  # code whose change is a miss
JSON_TOKEN = re.compile(r"\\u0000env:([^\\\"]+?)\\u0000")  # a placeholder as json.dumps writes it


class ConfigCache:
    """The config cache of one project, one file per list of overrides."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / FOLDER
        self.searchpath_seen: list[str] = []  # the extra config folders of a stale entry: stat them before composing

    def load(self, overrides: Sequence[str]) -> Config | None:
        """Return the cached config for `overrides`, or None if there is none or it is stale.

        Stale: a file it was made from changed (conf/, pyproject.toml, files `${pyproject:...}` read,
        config folders added by `hydra.searchpath`, the composing code), an env value it read changed,
        or the project folder moved (`${hydra:runtime.cwd}`)."""
        try:
            text = self._file(overrides).read_text()
            # Put the env values back in the JSON text itself: one pass in C, not a walk of every value.
            entry = parse_json(JSON_TOKEN.sub(lambda match: json.dumps(os.environ.get(match.group(1), ""))[1:-1], text))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("overrides") != list(overrides):
            return None
        try:
            return self._loaded(entry, overrides)
        except (KeyError, TypeError, ValueError, AttributeError, OSError):
            return None  # an entry of another shape: compose again

    def derived(self, overrides: Sequence[str]) -> Config | None:
        """Return the config of `overrides` derived from the cached config of the ones Hydra composes with,
        when the others are plain values nothing interpolates (see config.derive), else None."""
        composed, values = derive.split_values(overrides, derive.config_groups(self.root / CONF_DIR))
        base = self.load(composed) if values else None
        if base is None or base.interpolated is None:
            return None
        changed = derive.derived_values(base.values, values, base.interpolated, base.resolvers)
        if changed is None:
            return None
        return dataclasses.replace(base, values=changed, overrides=tuple(overrides))

    def _loaded(self, entry: dict[str, Any], overrides: Sequence[str]) -> Config | None:
        self.searchpath_seen = list(entry["searchpath"])
        if entry["root"] != str(self.root.resolve()):
            return None
        names = entry["env_names"]
        sources = self.fingerprint(entry["extra_files"], entry["searchpath"])
        if entry["files"] != sources or entry["env_hash"] != _env_hash(entry["salt"], names):
            return None
        values = entry["values"]
        files = {name: self.root / path for name, path in entry["pipeline_files"].items()}
        return Config(values, entry["env"], self.root, files, frozenset(names), frozenset(entry["resolvers"]),
                      tuple(overrides), cached=True, sources=sources, extra_files=tuple(entry["extra_files"]),
                      searchpath=tuple(entry["searchpath"]),
                      secret_paths=tuple(tuple(path) for path in entry["secret_paths"]),
                      interpolated=None if entry["interpolated"] is None else tuple(entry["interpolated"]))

    def store(self, overrides: Sequence[str], cfg: Config) -> None:
        """Save `cfg` for `overrides`, unless it used a resolver whose result the cache cannot vouch for."""
        if not cfg.resolvers <= PURE_RESOLVERS:
            return
        if any(secret_override(override) or URL_PASSWORD.search(override) for override in overrides):
            return  # a secret typed on the command line (a URL's password too): never written, composed every time
        if "\\u0000" in json.dumps(cfg.values, default=repr):
            return  # a NUL in a value could read as one of the placeholders below: composed every time
        text = _storable(self._entry(overrides, cfg))
        if text is not None:
            with contextlib.suppress(OSError):  # a cache that cannot be written costs composing next time
                write_atomically(self._file(overrides), text)
                self._prune()

    def _entry(self, overrides: Sequence[str], cfg: Config) -> dict[str, Any]:
        """Return the cache entry of `cfg`, the values read from the environment swapped for placeholders."""
        names = sorted(cfg.env_names)
        salt = secrets.token_hex(16)
        read = {os.environ[name]: name for name in names if os.environ.get(name)}
        pattern = re.compile("|".join(re.escape(v) for v in sorted(read, key=len, reverse=True)) or r"(?!)")
        return {
            "format": FORMAT,
            "overrides": list(overrides),
            # as the files were before they were read: an edit made while composing is a miss next time
            "files": cfg.sources,
            "extra_files": list(cfg.extra_files),
            "searchpath": list(cfg.searchpath),
            "secret_paths": [list(path) for path in cfg.secret_paths],  # where secrets are, never what
            "root": str(self.root.resolve()),
            "env_names": names,
            "salt": salt,
            "env_hash": _env_hash(salt, names),
            "env": cfg.env,
            "resolvers": sorted(cfg.resolvers),
            "interpolated": None if cfg.interpolated is None else list(cfg.interpolated),
            "pipeline_files": {name: str(path.relative_to(self.root)) for name, path in cfg.pipeline_files.items()},
            "values": _swap(cfg.values, pattern, lambda match: f"\x00env:{read[match.group(0)]}\x00"),
        }

    def fingerprint(self, extra_files: Sequence[str] = (), searchpath: Sequence[str] = (),
                    recording: bool = False) -> dict[str, list[int] | None]:
        """Return the identity of every file the config is made from, by path (`common.identity`).

        `extra_files`: files `${pyproject:...}` read; `searchpath`: config folders `hydra.searchpath` added
        (their YAML files count). `recording`: the identities to keep in an entry, taken before the files are
        read; a racy one (None) makes the entry a miss, so that file's content is read again next time."""
        at = identity.now()

        def identify(path: str | os.PathLike[str]) -> list[int] | None:
            return identity.record(path, at) if recording else identity.current(path)

        stats: dict[str, list[int] | None] = {}
        _stat_tree(self.root / CONF_DIR, CONF_DIR, stats, identify)
        stats[PYPROJECT] = identify(self.root / PYPROJECT)
        for module in CODE:
            spec = importlib.util.find_spec(module)
            stats[f"<{module}>"] = identify(spec.origin) if spec is not None and spec.origin else []
        for path in extra_files:
            stats[f"file:{path}"] = identify(self.root / path)
        for folder in searchpath:
            _stat_tree(folder, f"searchpath:{folder}", stats, identify, suffixes=(".yaml", ".yml"))
        return stats

    def _file(self, overrides: Sequence[str]) -> Path:
        key = hashlib.sha256(json.dumps(list(overrides)).encode()).hexdigest()[:24]
        return self.folder / f"{key}.json"

    def _prune(self) -> None:
        entries = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for stale in entries[KEEP:]:
            stale.unlink(missing_ok=True)


def _stat_tree(folder: Path | str, shown: str, stats: dict[str, list[int] | None],
               identify: Callable[[str], list[int] | None], suffixes: tuple[str, ...] = ()) -> None:
    if not os.path.isdir(folder):
        stats[shown] = []  # no conf/ yet (composing says so), or a search folder that is gone
        return
    with os.scandir(folder) as entries:
        for entry in entries:
            if _is_dir(entry):
                _stat_tree(entry.path, f"{shown}/{entry.name}", stats, identify, suffixes)
            elif not suffixes or entry.name.endswith(suffixes):
                stats[f"{shown}/{entry.name}"] = identify(entry.path)


def _env_hash(salt: str, names: list[str]) -> str:
    values = {name: os.environ.get(name) for name in names}
    return hashlib.sha256((salt + json.dumps(values, sort_keys=True)).encode()).hexdigest()


def _swap(value: Any, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> Any:
    """Return `value` with `pattern` replaced in every string, dict keys included, in one pass each."""
    if isinstance(value, str):
        return pattern.sub(replace, value)
    if isinstance(value, dict):
        return {_swap(k, pattern, replace): _swap(v, pattern, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [_swap(v, pattern, replace) for v in value]
    return value


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False  # a link loop: a file that cannot be read, which composing reports


def _storable(entry: dict[str, Any]) -> str | None:
    """Return the entry as the cache file's text, None when it cannot be kept as it is: a value JSON cannot hold
    (bytes), keys JSON would turn into text (1: a), a secret value not read from the environment (written in
    conf/): that config is composed every time instead."""
    try:
        text = json.dumps(entry)
    except (TypeError, ValueError):
        return None
    if json.loads(text)["values"] != entry["values"] or holds_secret(text):
        return None
    return text
