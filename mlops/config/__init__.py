"""Command-line words -> overrides (read once) -> cached or composed config -> one resolved `Config`.

Hydra and OmegaConf are touched only here; their private internals only in `hydra_adapter`.
"""

from mlops.common.errors import ConfigError
from mlops.config.load import keep, load
from mlops.config.model import MASK, Config, masked, secret_path
from mlops.config.words import CommandLine

__all__ = ["MASK", "CommandLine", "Config", "ConfigError", "keep", "load", "masked", "secret_path"]
