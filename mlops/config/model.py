"""The resolved configuration of one invocation, and the masking of secret-looking values."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONF_DIR = "conf"
ENV_GROUP = "env"  # the config group of env patches, and the key naming the stack
PIPELINES = "pipelines"
# The one list of secret-looking key names (README, "Secrets"): any key along a path that matches.
SECRET_KEY = re.compile(r"pass(word|wd|phrase)|token|secret|credential|api_?key|private|cookie|authorization|"
                        r"(^|[_-])(auth|pat|pwd)([_-]|$)|(^|[_-])key$", re.IGNORECASE)
MASK = "********"


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
    # (mtime, size, inode) of each file it is made from, taken before they were read
    sources: dict[str, list[int]] = field(default_factory=dict)
    extra_files: tuple[str, ...] = ()  # files besides conf/ and pyproject.toml that ${pyproject:...} read
    searchpath: tuple[str, ...] = ()  # config folders hydra.searchpath added

    @property
    def pipelines(self) -> dict[str, Any]:
        """Return each pipeline's config by name."""
        pipelines = self.values.get(PIPELINES)
        return pipelines if isinstance(pipelines, dict) else {}

    def get(self, dotted: str, default: Any = None) -> Any:
        """Return the value at a dotted key path such as gcp.bucket, or `default`."""
        node: Any = self.values
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def to_yaml(self) -> str:
        """Return the configuration as YAML, with secret-looking values masked."""
        import yaml

        return yaml.safe_dump(masked(self.values), sort_keys=False, default_flow_style=False)


def secret_path(parts: Sequence[str]) -> bool:
    """Say whether any key along a config key path looks secret (SECRET_KEY)."""
    return any(SECRET_KEY.search(str(part)) for part in parts)


def masked(value: Any, secret: bool = False) -> Any:
    """Return `value` with the values of secret-looking keys replaced by a mask."""
    if isinstance(value, dict):
        return {k: masked(v, secret or secret_path([k])) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, secret) for v in value]
    return MASK if secret and value not in (None, "") else value
