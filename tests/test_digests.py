"""Digests: a touched but unchanged file is hashed once, across processes; a changed one is seen, however it was
changed (the same size and timestamps, another file moved in its place)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xxhash

from mlops.common import identity
from mlops.doit_adapter.checker import checker_for
from mlops.state.digests import DigestCache, file_digest


def touch_earlier(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 5_000_000_000))


def test_file_digest_is_xxh3_128_of_the_content(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 3_000_000)
    assert file_digest(path) == xxhash.xxh3_128(b"x" * 3_000_000).hexdigest()


def test_a_touched_file_is_hashed_once_then_costs_a_stat_even_in_a_new_process(tmp_path: Path,
                                                                               settled: None) -> None:
    data, store = tmp_path / "data.csv", tmp_path / "digests.json"
    data.write_text("a,b\n1,2\n")
    first = checker_for(DigestCache(store))()
    state = first.get_state(str(data), None)
    first.cache.save()

    touch_earlier(data)
    second = checker_for(DigestCache(store))()  # as in the next doit process
    assert not second.check_modified(str(data), os.stat(data), state)
    assert second.cache.hashed == 1
    second.cache.save()

    third = checker_for(DigestCache(store))()
    assert not third.check_modified(str(data), os.stat(data), state)
    assert third.cache.hashed == 0


def test_a_file_just_written_is_hashed_until_its_timestamps_are_in_the_past(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    monkeypatch.setattr(identity, "now", lambda: data.stat().st_ctime_ns)  # asked in the tick of the write: racy
    cache = DigestCache()
    assert cache.digest(str(data)) == file_digest(data)
    assert cache.hashed == 0 and cache.entries == {}  # nothing kept: the next ask hashes again


def test_same_size_edits_are_detected_even_with_the_mtime_put_back(tmp_path: Path, settled: None) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    checker = checker_for(DigestCache())()
    state = checker.get_state(str(data), None)
    before = data.stat()
    data.write_text("a,b\n1,3\n")
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))  # `cp -p`, a restored backup: the ctime tells
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
    assert state == file_digest(data)
    assert checker.get_state(str(data), state) is None


def test_a_file_replaced_with_the_same_size_and_mtime_is_seen(tmp_path: Path, settled: None) -> None:
    data, other = tmp_path / "data.csv", tmp_path / "other.csv"
    data.write_text("a,b\n1,2\n")
    checker = checker_for(DigestCache())()
    state = checker.get_state(str(data), None)
    before = data.stat()
    other.write_text("a,b\n1,3\n")
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, data)  # a new inode with the old size and mtime
    assert checker.check_modified(str(data), os.stat(data), state)


def test_a_state_kept_by_an_older_version_is_compared_by_its_digest(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    info, checker = data.stat(), checker_for(DigestCache())()
    old = [info.st_mtime_ns, info.st_size, file_digest(data), info.st_ino]  # (mtime_ns, size, digest, inode)
    assert not checker.check_modified(str(data), info, old)
    assert checker.check_modified(str(data), info, [*old[:2], "another digest", old[3]])
