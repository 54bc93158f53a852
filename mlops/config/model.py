"""The resolved configuration of one invocation, and the masking of secret-looking values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.common import secrets
from mlops.common.secrets import MASK, secret_key, secret_path, shows_secret

__all__ = ["CONF_DIR", "ENV_GROUP", "MASK", "PIPELINES", "Config", "find_secrets", "masked", "secret_path"]

CONF_DIR = "conf"
ENV_GROUP = "env"  # the config group of env patches, and the key naming the stack
PIPELINES = "pipelines"


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
    # the identity of each file it is made from, taken before they were read (None: racy, see common.identity)
    sources: dict[str, list[int] | None] = field(default_factory=dict)
    extra_files: tuple[str, ...] = ()  # files besides conf/ and pyproject.toml that ${pyproject:...} read
    searchpath: tuple[str, ...] = ()  # config folders hydra.searchpath added
    secret_paths: tuple[tuple[str | int, ...], ...] = ()  # where values under secret-looking keys are
    interpolated: tuple[str, ...] | None = None  # the words inside its files' ${...} (None: not known)

    def __post_init__(self) -> None:
        for path in self.secret_paths:  # no message or record may show them (nor a string holding one)
            node: Any = self.values
            for part in path:
                if isinstance(node, dict):
                    node = node.get(part)
                elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                    node = node[part]
                else:
                    node = None
            secrets.note(node)
        secrets.note_url_passwords(self.values)

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


def masked(value: Any, secret: bool = False) -> Any:
    """Return `value` with the values of secret-looking keys, and strings holding one, replaced by a mask."""
    if isinstance(value, dict):
        return {k: masked(v, secret or secret_path([k])) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, secret) for v in value]
    if shows_secret(value):
        return MASK
    return MASK if secret and value not in (None, "") else value


def find_secrets(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Return the paths (keys, list indexes) of the values under secret-looking keys (the topmost of each)."""
    if path and isinstance(path[-1], str) and secret_key(path[-1]):
        return [path]
    if isinstance(value, dict):
        return [found for key, item in value.items() for found in find_secrets(item, (*path, key))]
    if isinstance(value, list):
        return [found for index, item in enumerate(value) for found in find_secrets(item, (*path, index))]
    return []
