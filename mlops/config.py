"""The one configuration of an invocation: composed once (or read from the cache), fully resolved."""

from __future__ import annotations

import functools
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from doit import doit_cmd

CONF_DIR = "conf"
PIPELINES = "pipelines"
SECRET_KEY = re.compile(r"pass(word|wd)|token|secret|credential|api_?key|(^|[_-])key$", re.IGNORECASE)
MASK = "********"


class ConfigError(Exception):
    """A mistake in conf/ or in a command-line override, told in one line."""


@dataclass(frozen=True)
class Config:
    """The fully resolved configuration of one invocation (plain dicts, lists and scalars)."""

    values: dict[str, Any]
    env: str
    root: Path
    pipeline_files: dict[str, Path] = field(default_factory=dict)
    env_names: frozenset[str] = frozenset()  # environment variables the config read
    resolvers: frozenset[str] = frozenset()  # resolvers its files and overrides use
    overrides: tuple[str, ...] = ()
    cached: bool = False  # read from the config cache rather than composed

    @property
    def pipelines(self) -> dict[str, dict[str, Any]]:
        """Return each pipeline's config by name."""
        return self.values.get(PIPELINES) or {}

    def to_yaml(self) -> str:
        """Return the configuration as YAML, with secret-looking values masked."""
        import yaml

        return yaml.safe_dump(masked(self.values), sort_keys=False, default_flow_style=False)


def compose(root: Path, overrides: Sequence[str] = ()) -> Config:
    """Compose and fully resolve the configuration of the project at `root` with Hydra overrides."""
    # Hydra is imported only when a config is composed, not when it comes from the cache.
    from mlops.compose import compose as hydra_compose

    return hydra_compose(root, overrides)


@functools.cache
def session(root: Path) -> Config:
    """Return this doit invocation's config: from the command line's key=value words, composed once."""
    from mlops.cache import ConfigCache

    overrides = command_line_overrides()
    refuse_interpolations(overrides, settings(root).get("allow_interpolation", []))
    return ConfigCache(root).load(overrides) or compose(root, overrides)


@functools.cache
def settings(root: Path) -> dict[str, Any]:
    """Return the project's `[tool.mlops]` table from pyproject.toml (empty if there is none)."""
    return pyproject(root).get("tool", {}).get("mlops", {})


@functools.cache
def pyproject(root: Path) -> dict[str, Any]:
    """Return the project's pyproject.toml, parsed (empty if there is none)."""
    try:
        with open(root / "pyproject.toml", "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"pyproject.toml: not valid TOML ({error})") from None


def refuse_interpolations(overrides: Sequence[str], allowed: Sequence[str]) -> None:
    """Fail on a command-line override whose value holds ${...}, unless its key is allowed."""
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if "${" in value and key not in allowed:
            raise ConfigError(f"{override}: ${{...}} on the command line is refused (it could read any "
                              "environment variable or file); put the reference in conf/, or list "
                              f"'{key}' in [tool.mlops] allow_interpolation in pyproject.toml")


def keep(cfg: Config) -> None:
    """Put a freshly composed config in the cache; call it once the command line proved valid."""
    from mlops.cache import ConfigCache

    if not cfg.cached:
        ConfigCache(cfg.root).store(cfg.overrides, cfg)


def command_line_overrides() -> list[str]:
    """Return this doit command line's key=value words, in order, as Hydra overrides."""
    bare = [w for w in sys.argv[1:] if w.startswith("~") and "=" not in w]
    if bare:
        raise ConfigError(f"{bare[0]}: doit reads a word without '=' as a task name; "
                          f"write {bare[0]}= to delete that key")
    # doit keeps the key=value words of its command line here, in order; it has no public accessor.
    words = doit_cmd._CMDLINE_VARS or {}
    # `~key=` is how a deletion reaches us through doit; Hydra spells it `~key`.
    return [key if key.startswith("~") and value == "" else f"{key}={value}"
            for key, value in words.items()]


def secret_path(parts: Sequence[str]) -> bool:
    """Say whether any key along a config key path looks secret (password, token, secret, key)."""
    return any(SECRET_KEY.search(str(part)) for part in parts)


def masked(value: Any, secret: bool = False) -> Any:
    """Return `value` with the values of secret-looking keys replaced by a mask."""
    if isinstance(value, dict):
        return {k: masked(v, secret or secret_path([k])) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, secret) for v in value]
    return MASK if secret and value not in (None, "") else value
