"""The config of one invocation: from the cache when nothing it depends on changed, else composed once."""

from __future__ import annotations

from pathlib import Path

from mlops.common.files import settings
from mlops.config.cache import ConfigCache
from mlops.config.model import Config
from mlops.config.words import CommandLine


def load(root: Path, command_line: CommandLine) -> Config:
    """Return the resolved config for this command line: cached, or composed with Hydra."""
    command_line.refuse_interpolations(settings(root).get("allow_interpolation", []))
    cache = ConfigCache(root)
    cached = cache.load(command_line.overrides)
    if cached is not None:
        return cached
    # Hydra is imported only when the cache misses: it costs more than the rest of a no-op run.
    from mlops.config.compose import compose

    return compose(root, command_line.overrides, cache.searchpath_seen)


def keep(cfg: Config) -> None:
    """Put a freshly composed config in the cache; call it once the command line proved valid."""
    if not cfg.cached:
        ConfigCache(cfg.root).store(cfg.overrides, cfg)
