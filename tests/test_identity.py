"""The one file identity: (device, inode, size, mtime_ns, ctime_ns), and git's racy rule."""

from __future__ import annotations

import os
from pathlib import Path

from mlops.common import identity


def test_the_identity_of_a_file_changes_with_any_write_or_replacement(tmp_path: Path) -> None:
    path, other = tmp_path / "f", tmp_path / "g"
    path.write_text("abc")
    first = identity.current(path)
    assert first == [*first[:2], 3, *first[3:]] and len(first) == 5
    info = path.stat()
    path.write_text("xyz")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # the same size and mtime: the ctime moved
    assert identity.current(path) != first
    other.write_text("xyz")
    os.utime(other, ns=(info.st_atime_ns, info.st_mtime_ns))
    before = identity.current(path)
    os.replace(other, path)
    assert identity.current(path)[1] != before[1]  # another inode
    assert identity.current(tmp_path / "missing") == []


def test_an_identity_recorded_within_the_clocks_granularity_of_a_write_vouches_for_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("abc")
    info = path.stat()
    written = max(info.st_mtime_ns, info.st_ctime_ns)
    assert identity.recorded(info, written) is None  # racy: a write in the same tick leaves the same identity
    assert identity.recorded(info, written + identity.FINE_WINDOW_NS) is None
    assert identity.recorded(info, written + identity.FINE_WINDOW_NS + 1) == identity.of(info)
    assert identity.record(tmp_path / "missing") == []  # absence is known at once


def test_kept_identities_hold_only_while_each_file_is_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("abc")
    later = max(path.stat().st_mtime_ns, path.stat().st_ctime_ns) + identity.COARSE_WINDOW_NS
    kept = {str(path): identity.record(path, later), str(tmp_path / "missing"): []}
    assert identity.unchanged(kept)
    (tmp_path / "missing").write_text("")
    assert not identity.unchanged(kept)
    assert not identity.unchanged({str(path): None})  # racy when kept: never taken as unchanged


class CoarseStat:
    """A stat of a file system that keeps whole seconds."""

    st_dev, st_ino, st_size = 1, 2, 3
    st_mtime_ns = st_ctime_ns = 1_700_000_000 * identity.SECOND_NS


def test_a_file_system_with_whole_seconds_gets_a_window_of_two(tmp_path: Path) -> None:
    info = CoarseStat()
    assert identity.recorded(info, info.st_ctime_ns + identity.SECOND_NS) is None  # type: ignore[arg-type]
    assert identity.recorded(info, info.st_ctime_ns + 3 * identity.SECOND_NS) is not None  # type: ignore[arg-type]
