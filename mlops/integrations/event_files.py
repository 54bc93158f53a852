"""The files of a tracking event: the event itself, written whole; the files it links (a hard link, or a copy);
the provenance records it copies: a step's own (one date's, for a dated step), and what its upstream steps
read, each file parsed once per command (a provenance file is always replaced by a rename, so a new one is
a new file)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from mlops.common.files import parse_json

READ = ("fn", "inputs", "params")  # what an event keeps of its upstream's provenance


def record_of(path: str | os.PathLike[str], date: str | None) -> dict[str, Any]:
    """Return the provenance record in a file (a dated step's: that date's), empty when it cannot be read."""
    try:
        made = parse_json(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    if date is not None and isinstance(made, dict):
        made = made.get(date)
    return made if isinstance(made, dict) else {}


class UpstreamReads:
    """What upstream steps' provenance says they read, by path, read again only when the file is another."""

    def __init__(self) -> None:
        self._read: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {}

    def __call__(self, path: str) -> dict[str, Any]:
        """Return what the provenance at `path` says its step read (empty when it cannot be read)."""
        try:
            info = os.stat(path)
        except OSError:
            return {}
        seen = (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        known = self._read.get(path)
        if known is None or known[0] != seen:
            made = record_of(path, None)
            known = self._read[path] = (seen, {key: made[key] for key in READ if key in made})
        return known[1]


def write_new(path: str, text: str) -> None:
    """Write a file that no one else writes, whole or not at all: through a temporary name of its own and a
    rename (an event has one writer, so no random name and no folder check are needed)."""
    staging = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(staging, "w") as out:
        out.write(text)
    os.replace(staging, path)


def link(source: str, target: str) -> None:
    """Hard-link a file into the outbox (a copy where links cannot be made); nothing if it is missing."""
    try:
        os.link(source, target)
    except FileExistsError:
        pass
    except FileNotFoundError:
        return
    except OSError:  # another file system, or one without links
        with contextlib.suppress(OSError):
            shutil.copyfile(source, target)
