"""Compose with Hydra (base + env patch + overrides), attach the pipeline files, resolve, explain failures."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml
from yaml.cyaml import CParser
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf._utils import get_yaml_loader
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from mlops import resolvers
from mlops.config import CONF_DIR, PIPELINES, Config, ConfigError

BASE = "config"
ENV_GROUP = "env"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SAFE_OPTION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
RESOLVER_USE = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")


def compose(root: Path, overrides: Sequence[str] = ()) -> Config:
    """Compose and fully resolve the configuration of the project at `root` with Hydra overrides."""
    resolvers.register()
    conf_dir = root / CONF_DIR
    parsed = parse_overrides(overrides)
    check_env_choice(parsed)
    ours = [o for o in parsed if _is_pipeline_key(o.key_or_group)]
    hydras = [o.input_line for o in parsed if not _is_pipeline_key(o.key_or_group)]
    with resolvers.tracking_env() as env_names:
        cfg, env = _compose_base(conf_dir, hydras)
        files = pipeline_files(conf_dir / PIPELINES)
        texts = {name: path.read_text(encoding="utf-8") for name, path in files.items()}
        _attach_pipelines(cfg, {name: load_yaml(texts[name], files[name], root) for name in files})
        _apply_overrides(cfg, ours)
        values = _resolve(cfg, files, root)
    sources = [*overrides, *texts.values(), *_base_texts(conf_dir)]
    used = {name for text in sources for name in RESOLVER_USE.findall(text)}
    return Config(values, env, root, files, frozenset(env_names), frozenset(used), tuple(overrides))


def _base_texts(conf_dir: Path) -> Iterator[str]:
    for path in conf_dir.rglob("*.y*ml"):
        if path.parent != conf_dir / PIPELINES:
            yield path.read_text(errors="replace")


def parse_overrides(overrides: Sequence[str]) -> list[Override]:
    """Parse Hydra override strings, naming the one that does not follow the grammar."""
    parser = OverridesParser.create()
    parsed = []
    for line in overrides:
        try:
            parsed.extend(parser.parse_overrides([line]))
        except OverrideParseException as error:
            reason = _escaped(str(error).splitlines()[0])
            raise ConfigError(f"override '{_escaped(line)}' is not valid Hydra override syntax ({reason}); "
                              "write key=value, +key=value, ++key=value or ~key=") from None
    return parsed


def _escaped(text: str) -> str:
    # Keep an error on one line whatever the user typed.
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


def check_env_choice(overrides: list[Override]) -> None:
    """Fail on an env= choice that is not a plain option name (it would name another file)."""
    for override in overrides:
        if override.key_or_group == ENV_GROUP and not override.is_delete():
            value = str(override.value())
            if not SAFE_OPTION.match(value):
                raise ConfigError(f"env={_escaped(value)}: an env option is the name of a file in "
                                  f"{CONF_DIR}/{ENV_GROUP}/ (letters, digits, _ -), without '/' or '..'")


def pipeline_files(folder: Path) -> dict[str, Path]:
    """Return every pipeline file in `folder` by pipeline name; a bad file name is an error."""
    files = {}
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        if path.suffix not in (".yaml", ".yml"):
            continue
        if not NAME.match(path.stem):
            fixed = re.sub(r"\W", "_", path.stem)
            fixed = fixed if NAME.match(fixed) else f"p_{fixed}"
            raise ConfigError(f"{CONF_DIR}/{PIPELINES}/{path.name}: a pipeline name must be a plain "
                              f"identifier (letters, digits, _); rename it, e.g. to {fixed}{path.suffix}")
        if path.stem in files:
            raise ConfigError(f"{CONF_DIR}/{PIPELINES}/{path.name}: pipeline '{path.stem}' is defined "
                              "twice (.yaml and .yml); keep one file")
        files[path.stem] = path
    return files


class _FastLoader(CParser, get_yaml_loader()):  # type: ignore[misc]
    """OmegaConf's YAML dialect (no timestamps, 1e3 floats, no duplicate keys) on libyaml's C parser."""

    def __init__(self, stream: str) -> None:
        CParser.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


def load_yaml(text: str, path: Path, root: Path) -> dict[str, Any]:
    """Parse one pipeline file's YAML mapping, naming file and line when it cannot be parsed."""
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        node = yaml.load(text, Loader=_FastLoader)
    except yaml.YAMLError as error:
        raise ConfigError(_yaml_error(shown, error)) from None
    if node is not None and not isinstance(node, dict):
        raise ConfigError(f"{shown}: must hold a mapping of step names to parameters, not a list")
    return node or {}


def _is_pipeline_key(key: str) -> bool:
    return key == PIPELINES or key.startswith(PIPELINES + ".")


def _compose_base(conf_dir: Path, overrides: list[str]) -> tuple[DictConfig, str]:
    if not (conf_dir / f"{BASE}.yaml").is_file():
        raise ConfigError(f"{CONF_DIR}/{BASE}.yaml not found; run doit in the project folder")
    try:
        with initialize_config_dir(config_dir=str(conf_dir.resolve()), version_base="1.3"):
            cfg = hydra_compose(BASE, overrides=overrides, return_hydra_config=True)
    except MissingConfigException as error:
        raise ConfigError(_missing_option(error)) from None
    except yaml.YAMLError as error:
        raise ConfigError(_yaml_error(_yaml_file(error, conf_dir), error)) from None
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(_hydra_error(error, conf_dir)) from None
    # Let ${hydra:runtime.choices.env} and friends resolve, as in a Hydra app.
    HydraConfig.instance().set_config(cfg)
    env = str(cfg.hydra.runtime.choices.get(ENV_GROUP) or "default")
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, env


def _attach_pipelines(cfg: DictConfig, pipelines: dict[str, dict[str, Any]]) -> None:
    with open_dict(cfg):
        base = cfg.get(PIPELINES)
        cfg[PIPELINES] = OmegaConf.merge(base, pipelines) if base is not None else pipelines


def _apply_overrides(cfg: DictConfig, overrides: list[Override]) -> None:
    try:
        # Hydra's own override semantics (=, +, ++, ~), applied after the pipelines are attached.
        ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(_hydra_error(error, None)) from None


def _resolve(cfg: DictConfig, files: dict[str, Path], root: Path) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        key = error.full_key
        raise ConfigError(f"{key}{_where(key, files, root)}: a required value (???) is not set; "
                          f"set it in conf/ or on the command line: {key}=...") from None
    except OmegaConfBaseException as error:
        key = error.full_key
        raise ConfigError(f"{key}{_where(key, files, root)}: {_omegaconf_reason(error)}") from None


def _omegaconf_reason(error: OmegaConfBaseException) -> str:
    reason = _one_line(str(error.msg).split("full_key:")[0])
    reason = re.sub(r"^\w+ raised while resolving interpolation: ", "", reason)
    unset = re.search(r"Environment variable '(.+?)' not found", reason)
    if unset:
        name = unset.group(1)
        return (f"environment variable {name} is not set; export it, "
                f"or give a default: ${{oc.env:{name},default}}")
    missing = re.search(r"Interpolation key '(.+?)' not found", reason)
    if missing:
        return f"refers to ${{{missing.group(1)}}}, which is not in the config; add that key or fix the reference"
    return reason


def _where(key: str, files: dict[str, Path], root: Path) -> str:
    parts = key.split(".")
    if len(parts) > 1 and parts[0] == PIPELINES and parts[1] in files:
        return f" (in {files[parts[1]].relative_to(root)})"
    return ""


def _missing_option(error: MissingConfigException) -> str:
    missing = error.missing_cfg_file or ""
    if ".." in missing.split("/"):
        return f"{missing}: an option name is a file name in {CONF_DIR}/, without '..'"
    group, _, option = missing.rpartition("/")
    if error.options is not None and group:
        choices = ", ".join(sorted(error.options))
        return f"{group}={option}: no such option in {CONF_DIR}/{group}/; choose one of: {choices}"
    return _one_line(str(error).split("Config search path")[0])


def _hydra_error(error: Exception, conf_dir: Path | None) -> str:
    text = str(error)
    added = re.match(r"Could not override '(.+?)'\.\s*To append to your config use \+(.+)", text, re.S)
    if added:
        key, line = added.group(1), added.group(2).strip()
        return f"{key}: no such key in the config; to add it, write +{line}"
    cause = error.__cause__
    if isinstance(cause, yaml.YAMLError) and conf_dir is not None:
        return _yaml_error(_yaml_file(cause, conf_dir), cause)
    if isinstance(cause, OmegaConfBaseException):
        text = f"{text} ({_omegaconf_reason(cause)})"
    return _one_line(text)


def _yaml_file(error: yaml.YAMLError, conf_dir: Path) -> str:
    mark = getattr(error, "problem_mark", None)
    name = getattr(mark, "name", "") or ""
    path = Path(name)
    if path.is_absolute() and path.is_relative_to(conf_dir.resolve()):
        return f"{CONF_DIR}/{path.relative_to(conf_dir.resolve())}"
    return name or f"a file in {CONF_DIR}/"


def _yaml_error(shown: Path | str, error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None) or str(error)
    mark = getattr(error, "problem_mark", None)
    if "<stream end>" in problem and getattr(error, "context_mark", None):
        mark = error.context_mark  # the file ended inside a construct: point at where it opened
    line = f":{mark.line + 1}" if mark is not None else ""
    return f"{shown}{line}: not valid YAML ({_one_line(problem)})"


def _one_line(text: str) -> str:
    return " ".join(text.split())
