"""Hydra, OmegaConf and YAML failures told in one line: file, line, key, and what to do."""

from __future__ import annotations

from pathlib import Path

import yaml
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationKeyError, OmegaConfBaseException

from mlops.common.names import one_line
from mlops.common.secrets import redact
from mlops.config.model import CONF_DIR, PIPELINES


def yaml_error(shown: Path | str, error: yaml.YAMLError) -> str:
    """Describe a YAML syntax error at its file and line."""
    problem = getattr(error, "problem", None) or str(error)
    mark = getattr(error, "problem_mark", None)
    if "<stream end>" in problem and getattr(error, "context_mark", None):
        mark = getattr(error, "context_mark", None)  # the file ended inside a construct: point at where it opened
    line = f":{mark.line + 1}" if mark is not None else ""
    return f"{shown}{line}: not valid YAML ({one_line(problem)})"


def yaml_file(error: yaml.YAMLError, conf_dir: Path) -> str:
    """Return the conf/ file a YAML error happened in, as the user knows it."""
    mark = getattr(error, "problem_mark", None)
    name = getattr(mark, "name", "") or ""
    path = Path(name)
    if path.is_absolute() and path.is_relative_to(conf_dir.resolve()):
        return f"{CONF_DIR}/{path.relative_to(conf_dir.resolve())}"
    return name or f"a file in {CONF_DIR}/"


def missing_option(error: MissingConfigException) -> str:
    """Describe a config group option that does not exist, with the valid choices."""
    missing = error.missing_cfg_file or ""
    if ".." in missing.split("/"):
        return f"{missing}: an option name is a file name in {CONF_DIR}/, without '..'"
    group, _, option = missing.rpartition("/")
    if error.options is not None and group:
        choices = ", ".join(sorted(error.options))
        return f"{group}={option}: no such option in {CONF_DIR}/{group}/; choose one of: {choices}"
    return one_line(redact(str(error)).splitlines()[0])  # masked before a secret is cut at a line


def hydra_error(error: Exception, conf_dir: Path) -> str:
    """Describe a failure of Hydra's compose in one line."""
    cause = error.__cause__
    if isinstance(cause, yaml.YAMLError):
        return yaml_error(yaml_file(cause, conf_dir), cause)
    if isinstance(cause, OmegaConfBaseException):
        return f"{one_line(str(error))} ({first_line(cause)})"
    return one_line(str(error))


def resolve_error(error: OmegaConfBaseException, raw: object, unset: list[str]) -> str:
    """Describe why a value could not be resolved; `raw` is its unresolved text."""
    if unset:
        name = unset[-1]
        return f"environment variable {name} is not set; export it, or give a default: ${{oc.env:{name},default}}"
    if isinstance(error, InterpolationKeyError):
        return f"refers to {raw}, which is not in the config; add that key or fix the reference"
    return first_line(error)


def first_line(error: OmegaConfBaseException) -> str:
    """Return the message of an OmegaConf error without the key and type lines it appends."""
    return one_line(redact(str(getattr(error, "msg", error))).splitlines()[0] if str(error) else "")


def where(key: str, files: dict[str, Path], root: Path) -> str:
    """Return ' (in conf/pipelines/<name>.yaml)' for a key of a pipeline file, else ''."""
    parts = key.split(".")
    if len(parts) > 1 and parts[0] == PIPELINES and parts[1] in files:
        return f" (in {files[parts[1]].relative_to(root)})"
    return ""


def raw_value(cfg: object, key: str) -> object:
    """Return the unresolved value at `key` (what the user wrote), or the key itself."""
    node = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return f"${{{key}}}"
        node = node[part]
    return node
