"""The config of one invocation: from the cache when nothing it depends on changed, else composed once."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from mlops.common.files import settings
from mlops.config.cache import ConfigCache
from mlops.config.model import CONF_DIR, ENV_GROUP, Config
from mlops.config.words import CommandLine


def load(root: Path, command_line: CommandLine) -> Config:
    """Return the resolved config for this command line: cached, or composed with Hydra."""
    command_line.refuse_interpolations(settings(root).get("allow_interpolation", []))
    cache = ConfigCache(root)
    cfg = cache.load(command_line.overrides) or cache.derived(command_line.overrides)
    if cfg is None:
        # Hydra is imported only when the cache misses: it costs more than the rest of a no-op run.
        from mlops.config.compose import compose

        cfg = compose(root, command_line.overrides, cache.searchpath_seen)
    warn_env_file(cfg)
    return cfg


def warn_env_file(cfg: Config) -> None:
    """Warn when the chosen env file leaves ${env} to the base: URIs and names built from it would point at
    another stack than its name says, without a word."""
    path = cfg.root / CONF_DIR / ENV_GROUP / f"{cfg.env}.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return  # a .yml file, or no env group: nothing to check
    value = cfg.values.get(ENV_GROUP)
    if value != cfg.env and not re.search(rf"^{ENV_GROUP}\s*:", text, re.MULTILINE):
        print(f"mlops: warning: {CONF_DIR}/{ENV_GROUP}/{cfg.env}.yaml does not set `{ENV_GROUP}:`, so ${{{ENV_GROUP}}} "
              f"is {value!r} from the base and what is built from it points there; set `{ENV_GROUP}: {cfg.env}`, "
              f"or `{ENV_GROUP}: {value}` to say so", file=sys.stderr)


def keep(cfg: Config) -> None:
    """Put a freshly composed config in the cache; call it once the command line proved valid."""
    if not cfg.cached:
        ConfigCache(cfg.root).store(cfg.overrides, cfg)
