"""Read tracking: every way a step can read its parameters is recorded, and only real changes count."""

from __future__ import annotations

import copy
import json

import pytest

from mlops.plan.steps import MISSING
from mlops.run.reads import Reads, TrackedParams, changes

SECTION = {"alpha": 0.5, "layers": [8, 4], "data": {"start": "2024-01-01", "days": 30}, "name": "m"}


def tracked() -> tuple[TrackedParams, Reads]:
    reads = Reads()
    return TrackedParams(copy.deepcopy(SECTION), reads), reads


def recorded(reads: Reads) -> dict:
    return json.loads(json.dumps(reads.to_json()))


def test_item_reads_record_exactly_the_leaves_read() -> None:
    params, reads = tracked()
    assert params["alpha"] == 0.5 and params["data"]["days"] == 30
    assert recorded(reads) == {"values": {'["alpha"]': 0.5, '["data", "days"]': 30}, "keys": {}}


def test_absent_keys_and_membership_are_recorded() -> None:
    params, reads = tracked()
    assert params.get("beta", 1.0) == 1.0
    assert "name" in params
    with pytest.raises(KeyError):
        params["gamma"]
    assert recorded(reads)["values"] == {'["beta"]': MISSING, '["name"]': "m", '["gamma"]': MISSING}


def test_listing_keys_records_the_key_set_and_items_record_values() -> None:
    params, reads = tracked()
    assert dict(params["data"].items()) == {"start": "2024-01-01", "days": 30}
    assert len(params) == 4
    assert recorded(reads) == {
        "values": {'["data", "start"]': "2024-01-01", '["data", "days"]': 30},
        "keys": {'["data"]': ["days", "start"], "[]": ["alpha", "data", "layers", "name"]},
    }


def test_copies_and_to_dict_count_as_reading_everything() -> None:
    params, reads = tracked()
    assert copy.deepcopy(params["data"]) == SECTION["data"]
    assert params.to_dict() == SECTION
    assert recorded(reads)["values"] == {'["data"]': SECTION["data"], "[]": SECTION}


def test_params_are_read_only_and_lists_are_copies() -> None:
    params, _ = tracked()
    with pytest.raises(TypeError):
        params["alpha"] = 1  # type: ignore[index]
    params["layers"].append(2)
    assert params["layers"] == [8, 4]


def test_json_cannot_bypass_the_record() -> None:
    params, _ = tracked()
    with pytest.raises(TypeError):
        json.dumps(params)
    assert json.loads(json.dumps(params.to_dict())) == SECTION


def test_changes_report_only_values_that_were_read() -> None:
    params, reads = tracked()
    params["alpha"], params["data"]["days"], params.get("beta")
    record = recorded(reads)
    same_reordered = {"name": "x", "data": {"days": 30, "start": "1999-01-01"}, "alpha": 0.5, "extra": 1}
    assert changes(record, same_reordered) == []
    assert changes(record, {**SECTION, "alpha": 0.7, "beta": 2}) == [("alpha", 0.5, 0.7), ("beta", MISSING, 2)]
    assert changes(record, {"data": {}}) == [("alpha", 0.5, MISSING), ("data.days", 30, MISSING)]


def test_key_set_changes_are_reported() -> None:
    params, reads = tracked()
    list(params["data"])
    record = recorded(reads)
    assert changes(record, SECTION) == []
    assert changes(record, {"data": {"start": 1, "days": 2, "end": 3}}) == [
        ("data (its keys)", ["days", "start"], ["days", "end", "start"])]
