"""doit's state store: a JSON snapshot plus a journal with one line per finished task.

doit's own backends write their file when the process exits, so a killed run forgets every
step it finished, and two runs in one folder overwrite each other. Here each task's record
is appended to the journal as one line as soon as doit saves it (it survives the process
being killed; a torn last line is ignored). At exit, once the journal has grown to a quarter of
the snapshot, it is folded into the snapshot under a file lock, from what is on disk, so a
concurrent run's records are kept; a run that saved a few records leaves them in the journal.
The snapshot is read only when a task's state is first needed (`doit list` never needs it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.common import identity
from mlops.common.errors import StateError
from mlops.common.files import parse_json, write_atomically

FOLD_RATIO = 4  # the journal is folded into the snapshot once it is a quarter of its size


class StateDB:
    """doit's backend interface (get, set, in_, remove, remove_all, dump) on a snapshot + journal.

    `last_key` is the key that a save of one task's record writes last: the record is journaled then.
    """

    last_key = ""

    def __init__(self, name: str, codec: Any, **_: Any) -> None:
        self.name = name
        self.codec = codec
        self.journal = f"{name}.journal"
        self._data: dict[str, dict[str, Any]] | None = None
        self._pending: dict[str, dict[str, Any]] = {}
        self._wrote = False
        # (snapshot identity, journal size) after our last look or write: another run replaces the snapshot (a
        # new file) and appends to the journal
        self._seen: tuple[list[int] | None, int] = ([], 0)
        self._foreign = False  # another process wrote since we loaded
        self._owner = os.getpid()
        self._releases: dict[str, Callable[[], None]] = {}  # task locks to give up once its record is saved

    @property
    def owner(self) -> int:
        """The process that opened the store: the one that saves what `doit -n`'s worker processes make."""
        return self._owner

    @property
    def _db(self) -> dict[str, dict[str, Any]]:
        if self._data is None:
            self._seen = self._files()
            self._data = read_state(self.name, self.journal)
        return self._data

    def changed_by_others(self) -> bool:
        """Say whether another process has written the state since this one loaded it (a stat or two)."""
        if not self._foreign:
            self._foreign = (not identity.same(self._seen[0], identity.current(self.name))
                             or _size(self.journal) != self._seen[1])
        return self._foreign

    def _files(self) -> tuple[list[int] | None, int]:
        return identity.record(self.name), _size(self.journal)

    def get(self, task_id: str, dependency: str) -> Any:
        record = self._db.get(task_id)
        return record.get(dependency) if record is not None else None

    def in_(self, task_id: str) -> bool:
        return task_id in self._db

    def set(self, task_id: str, dependency: str, value: Any) -> None:
        record = self._db.setdefault(task_id, {})
        if _stored(record.get(dependency)) != _stored(value):  # unchanged records cost no write
            record[dependency] = value
            self._pending.setdefault(task_id, {})[dependency] = value
        if dependency == self.last_key:
            if task_id in self._pending:
                self._append({"set": task_id, "values": self._pending.pop(task_id)})
            self._release(task_id)

    def keep(self, task_id: str) -> None:
        """Leave a task's saved record as it is (and give up its lock): a failed run publishes nothing."""
        self._pending.pop(task_id, None)
        self._release(task_id)

    def remove(self, task_id: str) -> None:
        self._db.pop(task_id, None)
        self._pending.pop(task_id, None)
        self._append({"remove": task_id})
        self._release(task_id)

    def hold_until_saved(self, task_id: str, release: Callable[[], None]) -> bool:
        """Keep a task's lock until doit has saved or removed its record; False if that cannot be done here."""
        if os.getpid() != self._owner:  # a worker process of `doit -n`: doit saves in the main process
            return False
        self._releases[task_id] = release
        return True

    def _release(self, task_id: str) -> None:
        release = self._releases.pop(task_id, None)
        if release is not None:
            release()

    def remove_all(self) -> None:
        self._data = {}
        self._pending.clear()
        self._append({"remove_all": True})

    def dump(self) -> None:
        """Fold the journal into the snapshot, from what is on disk; nothing to do if nothing changed."""
        for task_id in list(self._pending):  # a save that never reached its last key
            self._append({"set": task_id, "values": self._pending.pop(task_id)})
        for task_id in list(self._releases):
            self._release(task_id)
        if not self._wrote:
            return
        with self._locked():
            if not self._worth_folding():
                with open(self.journal, "a") as journal:
                    os.fsync(journal.fileno())  # as durable as a folded snapshot
                return
            state = read_state(self.name, self.journal)
            write_atomically(self.name, self.codec.encode(state), durable=True)
            with open(self.journal, "w"):
                pass

    def _worth_folding(self) -> bool:
        """Say whether the journal has grown to a fraction of the snapshot: folding rewrites the whole
        snapshot, so a run that saved a few records leaves them in the journal, which every load replays."""
        return _size(self.journal) * FOLD_RATIO >= _size(self.name)

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._locked(), open(self.journal, "ab+") as journal:
            self.changed_by_others()  # under the lock: anything beyond what we saw is another run's
            end = journal.seek(0, os.SEEK_END)
            if end and os.pread(journal.fileno(), 1, end - 1) != b"\n":
                line = "\n" + line  # after a line torn by a kill: ours starts a line of its own
            journal.write(line.encode())
            journal.flush()
            self._seen = (self._seen[0], os.fstat(journal.fileno()).st_size)
        self._wrote = True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self._wrote:  # once: --db-file in a folder of the project not made yet
            os.makedirs(os.path.dirname(self.name) or ".", exist_ok=True)
        with open(f"{self.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _stored(value: Any) -> Any:
    # Compare as the file holds it: doit hands in tuples that come back as lists.
    return json.loads(json.dumps(value)) if isinstance(value, tuple) else value


def read_state(snapshot: str, journal: str) -> dict[str, dict[str, Any]]:
    """Return the snapshot with the journal replayed on top; unreadable parts count as absent."""
    state = _snapshot(snapshot)
    try:
        with open(journal, encoding="utf-8", errors="replace") as handle:  # a damaged line is skipped
            lines = handle.readlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # torn by a kill mid-write: that task simply has no new record
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("set"), str) and isinstance(entry.get("values"), dict):
            state.setdefault(entry["set"], {}).update(entry["values"])
        elif isinstance(entry.get("remove"), str):
            state.pop(entry["remove"], None)
        elif entry.get("remove_all"):
            state = {}
    return state


def _snapshot(path: str) -> dict[str, dict[str, Any]]:
    """Return the snapshot's records; a damaged snapshot is set aside (renamed, never deleted), said in one line."""
    try:
        with open(path) as handle:
            state = parse_json(handle.read())
        if isinstance(state, dict) and all(isinstance(record, dict) for record in state.values()):
            return state
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError):
        pass
    aside = f"{path}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    with contextlib.suppress(FileNotFoundError):  # another run set it aside first
        os.rename(path, aside)
        print(f"mlops: {path} was damaged (not a state file); kept as {aside}; "
              "the steps whose records it held run again", file=sys.stderr)
    return {}


def check_folder(folder: Path, names: Iterable[str], folders: Iterable[str] = ()) -> None:
    """Fail in one line if the state cannot be kept in `folder`: made, writable, its files regular files,
    its `folders` folders."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StateError(f"{folder}/: cannot make the folder of outputs and state ({error.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StateError(f"{folder}/ is not writable; mlops keeps outputs and state there")
    for name in names:
        path = folder / name
        if path.exists() and not path.is_file():
            raise StateError(f"{path} is a folder (or not a file), where mlops keeps its state; move it away")
    for name in folders:
        path = folder / name
        if path.exists() and not path.is_dir():
            raise StateError(f"{path} is a file, where mlops keeps a folder of its state; move it away")
