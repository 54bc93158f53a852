"""The resolved-config cache: a hit equals a fresh compose; any change that matters is a miss."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from helpers import copy_project
from mlops.config.cache import ConfigCache
from mlops.config.compose import compose
from mlops.config.load import keep, load
from mlops.config.model import Config
from mlops.config.words import CommandLine

OVERRIDES = ["env=sandbox", "pipelines.pipeline_1.train.alpha=0.3"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled: None) -> Path:
    root = copy_project(tmp_path / "project")
    monkeypatch.chdir(root)
    monkeypatch.setenv("USER", "user-quill")
    monkeypatch.setenv("MLOPS_TRACKING_TOKEN", "SENTINEL-1234")
    return root


def stored(root: Path, overrides: list[str] = OVERRIDES) -> ConfigCache:
    cache = ConfigCache(root)
    cache.store(overrides, compose(root, overrides))
    return cache


def test_a_hit_equals_a_fresh_compose(project: Path) -> None:
    hit = stored(project).load(OVERRIDES)
    fresh = compose(project, OVERRIDES)
    assert hit is not None and hit.cached and not fresh.cached
    assert hit.values == fresh.values and hit.env == "sandbox"
    assert hit.pipeline_files == fresh.pipeline_files
    assert hit.values["tracking"]["token"] == "SENTINEL-1234"


def test_env_values_never_reach_the_disk(project: Path) -> None:
    stored(project)
    for path in (project / ".mlops").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "SENTINEL-1234" not in text and "user-quill" not in text, path


@pytest.mark.parametrize("override", ["tracking.uri=http://ci:url-pw-77aa@127.0.0.1:5000",
                                      "+extra=[postgres://svc:url-pw-77aa@host/db]"])
def test_a_url_password_typed_on_the_command_line_never_reaches_the_disk(project: Path, override: str) -> None:
    cache = stored(project, ["env=sandbox", override])
    assert cache.load(["env=sandbox", override]) is None  # composed every time instead
    assert not any("url-pw-77aa" in path.read_text() for path in project.rglob("*") if path.is_file())


def test_a_value_decoded_from_an_environment_variable_never_reaches_the_disk(project: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_DECODED", "{pin: 82731, port: 5000}")
    with (project / "conf" / "config.yaml").open("a") as config:
        config.write("extra: ${oc.decode:${oc.env:MLOPS_DECODED}}\n")
    overrides = ["env=sandbox"]
    assert compose(project, overrides).values["extra"] == {"pin": 82731, "port": 5000}
    cache = stored(project, overrides)
    assert cache.load(overrides) is None
    assert not any("82731" in path.read_text() for path in (project / ".mlops").rglob("*") if path.is_file())


def test_a_secret_written_in_conf_never_reaches_the_cache(project: Path) -> None:
    with (project / "conf" / "config.yaml").open("a") as config:
        config.write("db:\n  password: conf-secret-31b7\n  url: https://svc:conf-url-pw-31b7@db.example/x\n")
    cache = stored(project, ["env=sandbox"])
    assert cache.load(["env=sandbox"]) is None  # composed every time instead
    assert not any("31b7" in path.read_text() for path in (project / ".mlops").rglob("*") if path.is_file())


@pytest.mark.parametrize("change", [
    lambda root: (root / "conf" / "pipelines" / "pipeline_1.yaml").write_text(
        (root / "conf" / "pipelines" / "pipeline_1.yaml").read_text().replace("alpha: 1.0", "alpha: 2.0")),
    lambda root: (root / "conf" / "pipelines" / "pipeline_3.yaml").write_text("param: 1\n"),
    lambda root: (root / "conf" / "pipelines" / "pipeline_2.yaml").unlink(),
    lambda root: (root / "conf" / "env" / "sandbox.yaml").write_text("# @package _global_\nenv: sbx\n"),
    lambda root: (root / "pyproject.toml").write_text(
        (root / "pyproject.toml").read_text().replace('version = "0.1.0"', 'version = "0.2.0"')),
    lambda root: os.environ.__setitem__("MLOPS_TRACKING_TOKEN", "other"),
    lambda root: os.environ.__setitem__("USER", "bob"),
], ids=["edit-pipeline", "add-pipeline", "remove-pipeline", "edit-env-patch", "pyproject", "env-secret", "env-user"])
def test_any_change_the_config_depends_on_is_a_miss(project: Path, change) -> None:
    cache = stored(project)
    assert cache.load(OVERRIDES) is not None
    change(project)
    assert cache.load(OVERRIDES) is None


def test_other_overrides_have_their_own_entry(project: Path) -> None:
    cache = stored(project)
    assert cache.load(["env=sandbox"]) is None
    assert cache.load(list(reversed(OVERRIDES))) is None
    stored(project, ["env=prod"])
    assert cache.load(OVERRIDES).env == "sandbox" and cache.load(["env=prod"]).env == "prod"


def test_unset_env_variable_counts_as_a_value(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USER")
    cache = stored(project)
    assert cache.load(OVERRIDES).values["user"] == "runner"
    monkeypatch.setenv("USER", "user-quill")
    assert cache.load(OVERRIDES) is None


def test_a_config_using_an_unknown_resolver_is_never_cached(project: Path) -> None:
    calls = []
    OmegaConf.register_new_resolver("mlops_test_counter", lambda: calls.append(1) or len(calls), replace=True)
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text() + "run_number: ${mlops_test_counter:}\n")
    try:
        cache = stored(project)
    finally:
        OmegaConf.clear_resolver("mlops_test_counter")
    assert cache.load(OVERRIDES) is None
    assert not (project / ".mlops" / "cache").exists() or not list((project / ".mlops" / "cache").iterdir())


def test_an_edit_made_while_composing_is_a_miss_next_time(project: Path) -> None:
    cfg = compose(project, OVERRIDES)  # the files' stats are taken before they are read
    pipeline = project / "conf" / "pipelines" / "pipeline_1.yaml"
    pipeline.write_text(pipeline.read_text().replace("alpha: 1.0", "alpha: 2.0"))  # as if edited meanwhile
    cache = ConfigCache(project)
    cache.store(OVERRIDES, cfg)
    assert cache.load(OVERRIDES) is None


def loaded(root: Path, overrides: list[str] = OVERRIDES) -> Config:
    """Load as a command does: from the cache, else composed (and then kept)."""
    cfg = load(root, CommandLine(tuple(overrides)))
    keep(cfg)
    return cfg


def test_files_a_pyproject_reference_names_are_part_of_the_key(project: Path) -> None:
    extra = project / "extra.toml"
    extra.write_text('[model]\nfamily = "ridge"\n')
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text() + "family: ${pyproject:model.family,extra.toml}\n")
    assert loaded(project).values["family"] == "ridge"
    assert loaded(project).cached
    extra.write_text('[model]\nfamily = "boosted"\n')
    assert loaded(project).values["family"] == "boosted"
    cfg = compose(project, OVERRIDES)
    extra.write_text('[model]\nfamily = "forest"\n')  # as if edited while composing
    ConfigCache(project).store(OVERRIDES, cfg)
    assert loaded(project).values["family"] == "forest"


def test_config_folders_from_hydra_searchpath_are_part_of_the_key(project: Path) -> None:
    (project / "shared" / "db").mkdir(parents=True)
    option = project / "shared" / "db" / "main.yaml"
    option.write_text("host: one\n")
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("  - env: dev\n", "  - env: dev\n  - db: main\n")
                      + "hydra:\n  searchpath: [file://shared]\n")
    assert loaded(project).values["db"] == {"host": "one"}
    assert loaded(project).values["db"] == {"host": "one"}  # the folder's files stat-ed before composing
    assert loaded(project).cached
    option.write_text("host: two\n")
    assert loaded(project).values["db"] == {"host": "two"}


def test_a_moved_project_composes_again(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text() + "here: ${hydra:runtime.cwd}\n")
    assert loaded(project).values["here"] == str(project)
    moved = project.rename(tmp_path / "moved")  # the same files (inodes), in another folder
    monkeypatch.chdir(moved)
    assert loaded(moved).values["here"] == str(moved)


def test_a_resolver_used_in_a_search_folder_counts_as_used(project: Path) -> None:
    (project / "shared" / "db").mkdir(parents=True)
    (project / "shared" / "db" / "main.yaml").write_text("stamp: ${mlops_test_clock:}\n")
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("  - env: dev\n", "  - env: dev\n  - db: main\n")
                      + "hydra:\n  searchpath: [file://shared]\n")
    ticks = []
    OmegaConf.register_new_resolver("mlops_test_clock", lambda: ticks.append(1) or len(ticks), replace=True)
    try:
        assert [loaded(project).values["db"]["stamp"] for _ in range(3)] == [1, 2, 3]
    finally:
        OmegaConf.clear_resolver("mlops_test_clock")


@pytest.mark.parametrize(("line", "cached"), [
    ("run_dir: ${hydra:run.dir}", False),  # Hydra's run.dir holds ${now:...}: another value every second
    ("stamp: ${oc.decode:${oc.env:MLOPS_TEST_DECODED}}", False),  # decoded text may hold any interpolation
    ("where: ${hydra:runtime.cwd}", True),
    ("chosen: ${hydra:runtime.choices.env}", True),
], ids=["hydra-run-dir", "oc-decode", "hydra-cwd", "hydra-choice"])
def test_a_value_that_may_differ_next_time_is_never_cached(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                           line: str, cached: bool) -> None:
    monkeypatch.setenv("MLOPS_TEST_DECODED", "${now:%H-%M-%S-%f}")
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text() + line + "\n")
    loaded(project)
    assert loaded(project).cached is cached


def test_a_value_holding_a_nul_is_never_cached(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_TEST_HIDDEN", "not for the config")
    pipeline = project / "conf" / "pipelines" / "pipeline_1.yaml"
    pipeline.write_text(pipeline.read_text().replace("alpha: 1.0", 'alpha: "\\0env:MLOPS_TEST_HIDDEN\\0"'))
    loaded(project, [])
    again = loaded(project, [])
    assert not again.cached and again.values["pipelines"]["pipeline_1"]["train"]["alpha"] == "\0env:MLOPS_TEST_HIDDEN\0"
