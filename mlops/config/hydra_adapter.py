"""The only reader of Hydra's and OmegaConf's private internals; tests/test_internals.py checks each one.

- `ConfigLoaderImpl._apply_overrides_to_config`: Hydra's own semantics of `key=value`, `+key`,
  `++key` and `~key`, applied to the config after the pipeline files are attached. Hydra has no
  public function that applies overrides to a config it did not compose itself.
- `omegaconf._utils.get_yaml_loader`: OmegaConf's YAML dialect (no timestamps, 1e3 as a float, no
  duplicate keys), put on libyaml's C parser to read a thousand pipeline files in a second.
"""

from __future__ import annotations

from typing import Any

import yaml
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig
from omegaconf._utils import get_yaml_loader
from yaml.cyaml import CParser  # type: ignore[attr-defined]


def apply_overrides(cfg: DictConfig, overrides: list[Override]) -> None:
    """Apply parsed Hydra overrides to `cfg` in order, with Hydra's own semantics."""
    ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)


class FastLoader(CParser, get_yaml_loader()):  # type: ignore[misc]
    """OmegaConf's YAML dialect on libyaml's C parser."""

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def parse_yaml(text: str) -> Any:
    """Parse YAML text in OmegaConf's dialect (raises yaml.YAMLError)."""
    return yaml.load(text, Loader=FastLoader)
