"""Compose with Hydra (base + env patch), attach the pipeline files, apply overrides, resolve fully."""

from __future__ import annotations

import contextlib
import importlib.util
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from mlops.common.errors import ConfigError
from mlops.common.names import IDENTIFIER, PLAIN_NAME, escaped, one_line
from mlops.config import explain, hydra_adapter, resolvers
from mlops.config.cache import ConfigCache
from mlops.config.derive import config_groups, for_hydra_compose, interpolated_words, plain_sections, with_plain
from mlops.config.model import CONF_DIR, ENV_GROUP, PIPELINES, Config, find_secrets, secret_path
from mlops.config.resolvers import PYPROJECT
from mlops.config.words import parse_override

BASE = "config"
RESOLVER_USE = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")
HYDRA_USE = re.compile(r"\$\{\s*hydra\s*:\s*([^}]*)\}")
# What ${hydra:...} may read and still be the same next time (the others hold the clock: run.dir, sweep.dir...).
STABLE_HYDRA = re.compile(r"runtime\.cwd|runtime\.choices(\.[\w.]+)?")
ABSENT = object()


def compose(root: Path, overrides: Sequence[str] = (), searchpath: Sequence[str] = ()) -> Config:
    """Compose and fully resolve the configuration of the project at `root` with Hydra overrides.

    `searchpath`: the config folders hydra.searchpath added last time, to stat before reading them."""
    resolvers.register()
    before = ConfigCache(root).fingerprint(searchpath=searchpath, recording=True)  # before any is read
    conf_dir = root / CONF_DIR
    check_readable(conf_dir, root)
    parsed = parse_overrides(overrides)
    check_env_choice(parsed)
    groups = config_groups(conf_dir)
    for_hydra = [str(o.input_line) for o in parsed if for_hydra_compose(o.key_or_group, groups)]
    ours = [o for o in parsed if not for_hydra_compose(o.key_or_group, groups)]
    with resolvers.noting_env() as env_reads:
        cfg, env, folders = _compose_base(conf_dir, for_hydra)
        files = pipeline_files(conf_dir / PIPELINES)
        texts = {name: path.read_text(encoding="utf-8") for name, path in files.items()}
        texts_read = [*overrides, *texts.values(), *_base_texts(conf_dir, folders)]
        words = interpolated_words(texts_read)
        sections = {name: load_yaml(texts[name], files[name], root) for name in files}
        plain = plain_sections(sections, texts, set(words), [o.key_or_group for o in ours], PIPELINES in cfg)
        _attach_pipelines(cfg, {name: section for name, section in sections.items() if name not in plain})
        _apply_overrides(cfg, ours)
        values = with_plain(_resolve(cfg, files, root, env_reads), plain, list(files))
    used = {name for text in texts_read for name in RESOLVER_USE.findall(text)}
    # a key of Hydra's own config that is no stable fact counts as a resolver of its own: never cached
    used |= {f"hydra:{key.strip()}" for text in texts_read for key in HYDRA_USE.findall(text)
             if not STABLE_HYDRA.fullmatch(key.strip())}
    # A search folder not stat-ed before composing makes the entry stale: the next compose stats it first.
    extra = {path: stat for path, stat in env_reads.files.items() if path != PYPROJECT}
    sources = {**before, **{f"file:{path}": stat for path, stat in extra.items()}}
    return Config(values, env, root, files, frozenset(env_reads.names), frozenset(used), tuple(overrides),
                  sources=sources, extra_files=tuple(sorted(extra)), searchpath=tuple(folders),
                  secret_paths=tuple(find_secrets(values)), interpolated=tuple(words))


def check_readable(conf_dir: Path, root: Path) -> None:
    """Fail in one line on a config file that cannot be read or is not UTF-8 text."""
    for path in sorted(conf_dir.rglob("*.y*ml")) if conf_dir.is_dir() else []:
        shown = path.relative_to(root)
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{shown}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                              f"{error.start}); save it as UTF-8") from None
        except OSError as error:
            raise ConfigError(f"{shown}: cannot be read ({error.strerror})") from None


def _base_texts(conf_dir: Path, search_folders: list[str]) -> Iterator[str]:
    """Yield the text of every config file but the pipelines' (read already), search folders' included."""
    for folder in (conf_dir, *map(Path, search_folders)):
        for path in folder.rglob("*.y*ml"):
            if path.parent != conf_dir / PIPELINES:
                yield path.read_text(errors="replace")


def parse_overrides(overrides: Sequence[str]) -> list[Override]:
    """Parse Hydra override strings, naming the one that does not follow the grammar."""
    parsed: list[Override] = []
    for line in overrides:
        parsed.append(parse_override(line))
        if parsed[-1].is_sweep_override():  # a command line's sweeps are expanded before (config.sweeps)
            raise ConfigError(f"{escaped(line)}: one config holds one value per key; a sweep's variants are "
                              "composed one by one")
    return parsed


def check_env_choice(overrides: list[Override]) -> None:
    """Fail on an env= choice that is not a plain option name (it would name another file)."""
    for override in overrides:
        if override.key_or_group == ENV_GROUP and not override.is_delete():
            value = str(override.value())
            if not PLAIN_NAME.match(value):
                raise ConfigError(f"env={escaped(value)}: an env option is the name of a file in "
                                  f"{CONF_DIR}/{ENV_GROUP}/ (letters, digits, _ -), without '/' or '..'")


def pipeline_files(folder: Path) -> dict[str, Path]:
    """Return every pipeline file in `folder` by pipeline name; a bad file name is an error."""
    files: dict[str, Path] = {}
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        if path.suffix not in (".yaml", ".yml"):
            continue
        if not IDENTIFIER.match(path.stem):
            fixed = re.sub(r"\W", "_", path.stem)
            fixed = fixed if IDENTIFIER.match(fixed) else f"p_{fixed}"
            raise ConfigError(f"{CONF_DIR}/{PIPELINES}/{path.name}: a pipeline name must be a plain "
                              f"identifier (letters, digits, _); rename it, e.g. to {fixed}{path.suffix}")
        if path.stem in files:
            raise ConfigError(f"{CONF_DIR}/{PIPELINES}/{path.name}: pipeline '{path.stem}' is defined "
                              "twice (.yaml and .yml); keep one file")
        files[path.stem] = path
    return files


def load_yaml(text: str, path: Path, root: Path) -> dict[str, Any]:
    """Parse one pipeline file's YAML mapping, naming file and line when it cannot be parsed."""
    shown = path.relative_to(root) if path.is_relative_to(root) else path
    try:
        node = hydra_adapter.parse_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError(explain.yaml_error(shown, error)) from None
    if node is not None and not isinstance(node, dict):
        what = "a list" if isinstance(node, list) else f"the {type(node).__name__} {str(node)[:40]!r}"
        raise ConfigError(f"{shown}: must hold a mapping of step names to parameters (prepare:, train:, ...), "
                          f"not {what}")
    return node or {}


def _compose_base(conf_dir: Path, overrides: list[str]) -> tuple[DictConfig, str, list[str]]:
    if not (conf_dir / f"{BASE}.yaml").is_file():
        raise ConfigError(f"{CONF_DIR}/{BASE}.yaml not found; run doit in the project folder")
    try:
        with initialize_config_dir(config_dir=str(conf_dir.resolve()), version_base="1.3"):
            cfg = hydra_compose(BASE, overrides=overrides, return_hydra_config=True)
    except MissingConfigException as error:
        raise ConfigError(explain.missing_option(error)) from None
    except yaml.YAMLError as error:
        raise ConfigError(explain.yaml_error(explain.yaml_file(error, conf_dir), error)) from None
    except (HydraException, OmegaConfBaseException) as error:
        raise ConfigError(explain.hydra_error(error, conf_dir)) from None
    # Let ${hydra:runtime.choices.env} and friends resolve, as in a Hydra app.
    HydraConfig.instance().set_config(cfg)
    env = str(cfg.hydra.runtime.choices.get(ENV_GROUP) or "default")
    folders = search_folders(cfg.hydra.runtime.config_sources)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, env, folders


def search_folders(sources: Any) -> list[str]:
    """Return the config folders that hydra.searchpath added (file:// as written, pkg:// located)."""
    folders = []
    for source in sources:
        if not str(source.provider).startswith("hydra.searchpath"):
            continue
        if source.schema == "file":
            folders.append(str(source.path))
        elif source.schema == "pkg":
            with contextlib.suppress(ImportError, ValueError):
                spec = importlib.util.find_spec(str(source.path).replace("/", "."))
                if spec is not None:
                    folders.extend(spec.submodule_search_locations or [])
    return folders


def _attach_pipelines(cfg: DictConfig, pipelines: dict[str, dict[str, Any]]) -> None:
    with open_dict(cfg):
        base = cfg.get(PIPELINES)
        cfg[PIPELINES] = OmegaConf.merge(base, pipelines) if base is not None else pipelines


def _apply_overrides(cfg: DictConfig, overrides: list[Override]) -> None:
    for override in overrides:
        plain_set = not (override.is_add() or override.is_force_add() or override.is_delete())
        if plain_set and not _has_key(cfg, override.key_or_group):
            key = override.key_or_group
            raise ConfigError(f"{key}: no such key in the config; to add it, write +{override.input_line}")
    try:
        hydra_adapter.apply_overrides(cfg, overrides)
    except (HydraException, OmegaConfBaseException) as error:
        secret = [o for o in overrides if secret_path(o.key_or_group.split("."))]
        if secret:  # the library's message may show the value there: say what failed without it
            raise ConfigError(f"{str(secret[0].input_line).partition('=')[0]}: cannot apply this override to a "
                              "secret-looking key (its value is not shown); to delete the key whatever it "
                              f"holds, write ~{secret[0].key_or_group}=") from None
        raise ConfigError(one_line(str(error))) from None


def _has_key(cfg: DictConfig, key: str) -> bool:
    """Say whether `key` is in the config, even with a value that does not resolve (yet) or is ???."""
    try:
        if OmegaConf.select(cfg, key, default=ABSENT) is not ABSENT:
            return True
        parent_key, _, last = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    except OmegaConfBaseException:
        return True  # a value is there; it refers to something that does not resolve
    return OmegaConf.is_config(parent) and OmegaConf.is_missing(parent, last)


def _resolve(cfg: DictConfig, files: dict[str, Path], root: Path,
             env_reads: resolvers.EnvReads) -> dict[str, Any]:
    try:
        values = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        key = str(error.full_key)
        raise ConfigError(f"{key}{explain.where(key, files, root)}: a required value (???) is not set; "
                          f"set it in conf/ or on the command line: {key}=...") from None
    except OmegaConfBaseException as error:
        key = str(error.full_key)
        reason = explain.resolve_error(error, explain.raw_value(cfg, key), env_reads.unset)
        raise ConfigError(f"{key}{explain.where(key, files, root)}: {reason}") from None
    assert isinstance(values, dict)
    return {str(key): value for key, value in values.items()}
