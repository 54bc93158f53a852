"""The state store: one journal line per finished task, torn lines ignored, concurrent runs merged."""

from __future__ import annotations

import json
from pathlib import Path

from doit.dependency import JSONCodec

from mlops.doit_adapter.backend import Backend as StateDB
from mlops.state.store import read_state


def save(db: StateDB, task: str, value: str) -> None:
    """Save a task the way doit's save_success does: values first, deps: last."""
    db.set(task, "_values_:", {"v": value})
    db.set(task, "checker:", "DigestChecker")
    db.set(task, "deps:", ("in.csv",))


def test_each_finished_task_is_one_journal_line_before_exit(tmp_path: Path) -> None:
    name = str(tmp_path / "state.json")
    db = StateDB(name, JSONCodec())
    save(db, "train:a", "1")
    db.set("evaluate:a", "_values_:", {})  # a save still under way
    lines = Path(f"{name}.journal").read_text().splitlines()
    assert [json.loads(line)["set"] for line in lines] == ["train:a"]
    assert read_state(name, f"{name}.journal") == {
        "train:a": {"_values_:": {"v": "1"}, "checker:": "DigestChecker", "deps:": ["in.csv"]}}


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    name = str(tmp_path / "state.json")
    save(StateDB(name, JSONCodec()), "train:a", "1")
    with open(f"{name}.journal", "a") as journal:
        journal.write('{"set": "train:b", "values": {"_val')
    assert list(read_state(name, f"{name}.journal")) == ["train:a"]


def test_dump_folds_the_journal_and_keeps_a_concurrent_runs_records(tmp_path: Path) -> None:
    name = str(tmp_path / "state.json")
    first, second = StateDB(name, JSONCodec()), StateDB(name, JSONCodec())
    assert first.get("x", "y") is None and second.get("x", "y") is None  # both loaded before either saved
    save(first, "train:a", "1")
    save(second, "train:b", "2")
    first.dump()
    second.dump()
    assert Path(f"{name}.journal").read_text() == ""
    state = json.loads(Path(name).read_text())
    assert sorted(state) == ["train:a", "train:b"]
    assert StateDB(name, JSONCodec()).get("train:b", "_values_:") == {"v": "2"}


def test_removal_is_journaled_and_unchanged_saves_write_nothing(tmp_path: Path) -> None:
    name = str(tmp_path / "state.json")
    db = StateDB(name, JSONCodec())
    save(db, "train:a", "1")
    db.dump()
    again = StateDB(name, JSONCodec())
    save(again, "train:a", "1")
    assert Path(f"{name}.journal").read_text() == ""
    again.remove("train:a")
    assert read_state(name, f"{name}.journal") == {}


def test_a_run_that_changed_nothing_does_not_rewrite_the_snapshot(tmp_path: Path) -> None:
    name = str(tmp_path / "state.json")
    db = StateDB(name, JSONCodec())
    save(db, "train:a", "1")
    db.dump()
    before = Path(name).stat().st_mtime_ns
    reader = StateDB(name, JSONCodec())
    assert reader.get("train:a", "checker:") == "DigestChecker"
    reader.dump()
    assert Path(name).stat().st_mtime_ns == before


def test_only_another_process_writes_count_as_changes_by_others(tmp_path: Path) -> None:
    name = str(tmp_path / "state.json")
    save(StateDB(name, JSONCodec()), "prepare:a", "0")
    ours, theirs = StateDB(name, JSONCodec()), StateDB(name, JSONCodec())
    assert ours.get("prepare:a", "checker:") == "DigestChecker"
    save(ours, "train:a", "1")
    assert not ours.changed_by_others()
    save(theirs, "train:b", "2")
    assert ours.changed_by_others()


def test_a_few_records_over_a_big_snapshot_stay_in_the_journal_until_it_grows(tmp_path: Path) -> None:
    name = str(tmp_path / "state.json")
    db = StateDB(name, JSONCodec())
    for index in range(40):
        save(db, f"train:p{index}", "1")
    db.dump()
    snapshot = Path(name).stat().st_mtime_ns
    again = StateDB(name, JSONCodec())
    save(again, "train:p0", "2")
    again.dump()  # one record: rewriting the whole snapshot is not worth it
    assert Path(name).stat().st_mtime_ns == snapshot and Path(f"{name}.journal").read_text()
    assert StateDB(name, JSONCodec()).get("train:p0", "_values_:") == {"v": "2"}
    grown = StateDB(name, JSONCodec())
    for index in range(40):
        save(grown, f"train:p{index}", "3")
    grown.dump()  # now a quarter of the snapshot: folded
    assert Path(f"{name}.journal").read_text() == ""
    assert json.loads(Path(name).read_text())["train:p39"]["_values_:"] == {"v": "3"}


def test_a_record_after_a_line_torn_by_a_kill_starts_a_line_of_its_own(tmp_path: Path) -> None:
    name = str(tmp_path / "state.json")
    save(StateDB(name, JSONCodec()), "train:a", "1")
    with open(f"{name}.journal", "a") as journal:
        journal.write('{"set": "train:b", "values": {"_val')
    save(StateDB(name, JSONCodec()), "train:c", "3")
    assert sorted(read_state(name, f"{name}.journal")) == ["train:a", "train:c"]
