"""Read tracking: every way a step can read its parameters is recorded, and only real changes count."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping

import pytest

from mlops.plan.steps import MISSING
from mlops.run.reads import MAPPING, PRESENT, SECRET_DIGEST, Reads, TrackedParams, changes

SECTION = {"alpha": 0.5, "layers": [8, 4], "data": {"start": "2024-01-01", "days": 30}, "name": "m"}


def tracked() -> tuple[TrackedParams, Reads]:
    reads = Reads()
    return TrackedParams(copy.deepcopy(SECTION), reads), reads


def recorded(reads: Reads) -> dict:
    return json.loads(json.dumps(reads.to_json()))


def test_item_reads_record_exactly_the_leaves_read() -> None:
    params, reads = tracked()
    assert params["alpha"] == 0.5 and params["data"]["days"] == 30
    assert recorded(reads) == {"values": {'["alpha"]': 0.5, '["data"]': MAPPING, '["data", "days"]': 30},
                               "keys": {}}


def test_absent_keys_and_membership_are_recorded() -> None:
    params, reads = tracked()
    assert params.get("beta", 1.0) == 1.0
    assert "name" in params and "data" in params
    with pytest.raises(KeyError):
        params["gamma"]
    record = recorded(reads)
    assert record["values"] == {'["beta"]': MISSING, '["name"]': PRESENT, '["data"]': PRESENT, '["gamma"]': MISSING}
    assert changes(record, {**SECTION, "name": "other", "data": 3}) == []  # only that they are there counts
    assert changes(record, {"alpha": 1, "data": {}}) == [("name", PRESENT, MISSING)]
    params["name"], params["data"], "name" in params
    assert recorded(reads)["values"]["[\"name\"]"] == "m" and recorded(reads)["values"]["[\"data\"]"] == MAPPING


def test_listing_keys_records_the_key_set_and_items_record_values() -> None:
    params, reads = tracked()
    assert dict(params["data"].items()) == {"start": "2024-01-01", "days": 30}
    assert len(params) == 4
    assert recorded(reads) == {
        "values": {'["data"]': MAPPING, '["data", "start"]': "2024-01-01", '["data", "days"]': 30},
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


@pytest.mark.parametrize(("old", "new"), [(1, 1.0), (1.0, True), (0, False), (False, 0.0), ("1", 1), (None, "")])
def test_a_value_of_another_type_is_a_change(old, new) -> None:
    reads = Reads()
    TrackedParams({"alpha": old}, reads)["alpha"]
    record = recorded(reads)
    assert changes(record, {"alpha": old}) == []
    assert [key for key, *_ in changes(record, {"alpha": new})] == ["alpha"]


def test_nan_and_integer_keys_are_the_same_next_time() -> None:
    section = {"alpha": float("nan"), "w": {1: 0.5}}
    reads = Reads()
    params = TrackedParams(section, reads)
    params["alpha"], params["w"][1], list(params["w"])
    record = recorded(reads)
    assert changes(record, {"alpha": float("nan"), "w": {1: 0.5}}) == []
    assert [key for key, *_ in changes(record, {"alpha": float("nan"), "w": {1: 0.7}})] == ["w.1"]


def test_integer_keys_are_the_keys_they_are() -> None:
    section = {"class_weight": {0: 1.0, 1: 5.0}}
    reads = Reads()
    weights = TrackedParams(copy.deepcopy(section), reads)["class_weight"]
    assert 1 in weights and "1" not in weights and weights[0] == 1.0 and sorted(weights) == [0, 1]
    record = recorded(reads)
    assert changes(record, copy.deepcopy(section)) == []  # the same next time: nothing reruns for nothing
    assert changes(record, {"class_weight": {1: 5.0, 0: 1.0}}) == []
    assert [key for key, *_ in changes(record, {"class_weight": {0: 1.0}})] == ["class_weight.1",
                                                                                "class_weight (its keys)"]
    text_keys = {"class_weight": {"0": 1.0, "1": 5.0}}  # `1 in` is False there, `"1" in` True
    assert {key for key, *_ in changes(record, text_keys)} == {"class_weight.0", "class_weight.1",
                                                               "class_weight (its keys)"}
    assert [key for key, *_ in changes(record, {"class_weight": {0: 1.0, True: 5.0}})] != []


def test_a_whole_mapping_read_keeps_the_type_of_its_keys() -> None:
    reads = Reads()
    assert TrackedParams({"w": {1: 0.5, "1": 0.7}}, reads)["w"].to_dict() == {1: 0.5, "1": 0.7}
    record = recorded(reads)
    assert changes(record, {"w": {"1": 0.7, 1: 0.5}}) == []
    assert [key for key, *_ in changes(record, {"w": {"1": 0.5, 1: 0.7}})] == ["w"]


def test_what_a_section_is_counts_and_printing_it_reads_all_of_it() -> None:
    params, reads = tracked()
    assert isinstance(params["data"], Mapping)  # only asks what it is
    record = recorded(reads)
    assert changes(record, {**SECTION, "data": {"other": 1}}) == []  # still a mapping; no key of it was read
    assert [key for key, *_ in changes(record, {**SECTION, "data": None})] == ["data"]
    assert [key for key, *_ in changes(record, {**SECTION, "data": [1]})] == ["data"]
    printed, reads = tracked()
    text = f"{printed['data']}"
    assert "2024-01-01" in text
    assert [key for key, *_ in changes(recorded(reads), {**SECTION, "data": {"start": "x", "days": 30}})] == ["data"]


def test_no_secret_is_recorded_at_any_depth() -> None:
    section = {"creds": {"user": "u", "password": "SENTINEL"}, "users": [{"api_key": "SENTINEL"}], "token": "x"}
    reads = Reads()
    params = TrackedParams(section, reads)
    params["creds"].to_dict(), params.to_dict(), str(params["users"])
    text = json.dumps(recorded(reads))
    assert "SENTINEL" not in text and SECRET_DIGEST in text
    assert changes(recorded(reads), section) == []
    moved = {**section, "creds": {"user": "u", "password": "other"}}
    assert {key for key, *_ in changes(recorded(reads), moved)} == {"creds", ""}


def test_a_key_found_by_an_equal_key_of_another_type_is_read_as_its_own() -> None:
    section = {"w": {0: 1.0, 1.0: 5.0}, "flags": {True: "on"}}  # YAML's 1.0: and true:, each found by 1
    reads = Reads()
    params = TrackedParams(copy.deepcopy(section), reads)
    weights = params["w"]
    assert weights[1] == 5.0 and 1 in weights and weights.get(1.0) == 5.0 and params["flags"][1] == "on"
    record = recorded(reads)
    assert changes(record, copy.deepcopy(section)) == []  # the same next time
    assert [key for key, *_ in changes(record, {"w": {0: 1.0}, "flags": {1: "on"}})] == ["w.1.0", "flags.True"]
