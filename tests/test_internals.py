"""Contract tests: each private detail of doit, Hydra and OmegaConf that mlops reads still behaves as it did.

A failure here names the one adapter module to change after a library upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from doit.cmd_base import ModuleTaskLoader
from doit.dependency import Dependency, JSONCodec, MD5Checker
from doit.doit_cmd import DoitMain
from doit.task import Task
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mlops.config import hydra_adapter
from mlops.doit_adapter import internals

DOIT_ADAPTER = "mlops/doit_adapter/internals.py"
HYDRA_ADAPTER = "mlops/config/hydra_adapter.py"


class RecordingDB:
    """A doit backend that remembers the order in which keys are set."""

    def __init__(self, name: str, codec: Any, **_: Any) -> None:
        self.name = name
        self.data: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []

    def get(self, task_id: str, dependency: str) -> Any:
        return self.data.get(task_id, {}).get(dependency)

    def in_(self, task_id: str) -> bool:
        return task_id in self.data

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        self.data.setdefault(task_id, {})[dependency] = value
        self.order.append(dependency)

    def remove(self, task_id: str) -> None:
        self.data.pop(task_id, None)

    def remove_all(self) -> None:
        self.data.clear()

    def dump(self) -> None:
        pass


def manager(tmp_path: Path) -> Dependency:
    return Dependency(RecordingDB, str(tmp_path / "state"), checker_cls=MD5Checker, codec_cls=JSONCodec)


def test_doit_keeps_the_command_lines_key_value_words_in_order() -> None:
    rest = DoitMain().process_args(["env=prod", "train:p", "~gcp.bucket=", "a.b=x=y"])
    assert rest == ["train:p"]
    assert internals.command_line_words() == [("env", "prod"), ("~gcp.bucket", ""), ("a.b", "x=y")], (
        f"doit no longer keeps key=value words in doit_cmd._CMDLINE_VARS: adapt {DOIT_ADAPTER}")


def test_doit_saves_values_under_their_key_and_deps_last(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("x")
    task = Task("t", [lambda: None], file_dep=[str(source)])
    task.values = {"made": 1}
    deps = manager(tmp_path)
    deps.save_success(task)
    record = deps.backend.data["t"]
    assert record[internals.VALUES_KEY] == {"made": 1}, f"doit keeps values elsewhere: adapt {DOIT_ADAPTER}"
    assert deps.backend.order[-1] == internals.LAST_SAVED_KEY, (
        f"doit's save_success no longer writes {internals.LAST_SAVED_KEY!r} last: adapt {DOIT_ADAPTER}")


def test_doits_status_reasons_have_the_keys_doit_why_explains(tmp_path: Path) -> None:
    task = Task("t", [lambda: None], targets=[str(tmp_path / "a.txt")], uptodate=[False])
    internals.set_targets(task, [str(tmp_path / "b.txt")])
    status = manager(tmp_path).get_status(task, {"t": task}, get_log=True)
    reasons = internals.status_reasons(status)
    assert set(reasons) <= internals.REASON_KEYS, f"doit has new status reasons: adapt {DOIT_ADAPTER}"
    assert reasons.get("missing_target") == [str(tmp_path / "b.txt")], (
        f"doit no longer checks task.targets set by an up-to-date check: adapt {DOIT_ADAPTER}")
    assert [entry[0] for entry in reasons.get("uptodate_false", [])] == [False]


def test_doit_hands_actions_its_dependency_manager(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def action() -> None:
        seen["backend"] = internals.state_backend()
        seen["values"] = internals.saved_values("remember")

    def task_remember() -> dict[str, Any]:
        return {"actions": [action], "uptodate": [False]}

    DoitMain(extra_config={"GLOBAL": {"dep_file": str(tmp_path / "db.json"), "backend": "json"}},
             task_loader=_loader({"task_remember": task_remember})).run(["remember"])
    assert seen["backend"] is not None and seen["values"] == {}, (
        f"doit's Globals.dep_manager is not set while actions run: adapt {DOIT_ADAPTER}")


def _loader(namespace: dict[str, Any]) -> ModuleTaskLoader:
    return ModuleTaskLoader(namespace)


def test_hydra_applies_overrides_to_a_config_it_did_not_compose() -> None:
    cfg = OmegaConf.create({"a": {"b": 1}, "c": 2})
    overrides = OverridesParser.create().parse_overrides(["a.b=3", "+a.d=4", "++e=5", "~c"])
    hydra_adapter.apply_overrides(cfg, overrides)
    assert OmegaConf.to_container(cfg) == {"a": {"b": 3, "d": 4}, "e": 5}, (
        f"Hydra's ConfigLoaderImpl._apply_overrides_to_config changed: adapt {HYDRA_ADAPTER}")


def test_omegaconfs_yaml_dialect_on_the_c_parser() -> None:
    parsed = hydra_adapter.parse_yaml("a: 1e3\nb: 2026-01-01\n")
    assert parsed == {"a": 1000.0, "b": "2026-01-01"}, (
        f"omegaconf._utils.get_yaml_loader changed its dialect: adapt {HYDRA_ADAPTER}")
    with pytest.raises(yaml.YAMLError):
        hydra_adapter.parse_yaml("a: 1\na: 2\n")


def test_doits_run_options_know_which_the_command_line_gave() -> None:
    from doit.cmdparse import DefaultUpdate

    options = DefaultUpdate()
    options.set_default("backend", "dbm")
    options.set_default("dep_file", ".doit.db")
    options["backend"] = "sqlite3"  # as doit's parser sets what the command line gave
    config = {"backend": "mlops", "dep_file": "outputs/dev/.doit-state.json"}
    assert internals.run_option(options, config, "backend") == "sqlite3", DOIT_ADAPTER
    assert internals.run_option(options, config, "dep_file") == "outputs/dev/.doit-state.json", DOIT_ADAPTER
    options.update_defaults(config)
    assert (options["backend"], options["dep_file"]) == ("sqlite3", "outputs/dev/.doit-state.json"), DOIT_ADAPTER
