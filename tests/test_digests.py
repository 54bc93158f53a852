"""Digests: a touched but unchanged file is hashed once, across processes; a changed one is seen."""

from __future__ import annotations

import os
from pathlib import Path

import xxhash

from mlops.doit_adapter.checker import checker_for
from mlops.state.digests import DigestCache, file_digest


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


def test_file_digest_is_xxh3_128_of_the_content(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 3_000_000)
    assert file_digest(path) == xxhash.xxh3_128(b"x" * 3_000_000).hexdigest()


def test_a_touched_file_is_hashed_once_then_costs_a_stat_even_in_a_new_process(tmp_path: Path) -> None:
    data, store = tmp_path / "data.csv", tmp_path / "digests.json"
    data.write_text("a,b\n1,2\n")
    first = checker_for(DigestCache(store))()
    state = first.get_state(str(data), None)
    first.cache.save()

    touch_later(data)
    second = checker_for(DigestCache(store))()  # as in the next doit process
    assert not second.check_modified(str(data), os.stat(data), state)
    assert second.cache.hashed == 1
    second.cache.save()

    third = checker_for(DigestCache(store))()
    assert not third.check_modified(str(data), os.stat(data), state)
    assert third.cache.hashed == 0


def test_same_size_edits_are_detected(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    checker = checker_for(DigestCache())()
    state = checker.get_state(str(data), None)
    data.write_text("a,b\n1,3\n")
    touch_later(data)
    assert checker.check_modified(str(data), os.stat(data), state)


def test_a_lost_or_broken_cache_only_costs_hashing_again(tmp_path: Path) -> None:
    data, store = tmp_path / "data.csv", tmp_path / "digests.json"
    data.write_text("1")
    store.write_text("{not json")
    cache = DigestCache(store)
    assert cache.digest(str(data)) == file_digest(data)
    cache.save()
    assert DigestCache(store).digest(str(data)) == file_digest(data)


def test_get_state_skips_unchanged_files(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("1")
    checker = checker_for(DigestCache())()
    state = checker.get_state(str(data), None)
    assert checker.get_state(str(data), list(state)) is None


def test_a_file_replaced_with_the_same_size_and_mtime_is_seen(tmp_path: Path) -> None:
    data, other = tmp_path / "data.csv", tmp_path / "other.csv"
    data.write_text("a,b\n1,2\n")
    checker = checker_for(DigestCache())()
    state = checker.get_state(str(data), None)
    other.write_text("a,b\n1,3\n")
    os.utime(other, ns=(state[0], state[0]))
    os.replace(other, data)  # a new inode with the old size and mtime
    assert os.stat(data).st_mtime_ns == state[0] and os.stat(data).st_size == state[1]
    assert checker.check_modified(str(data), os.stat(data), state)
    assert not checker.check_modified(str(data), os.stat(data), checker.get_state(str(data), state))
