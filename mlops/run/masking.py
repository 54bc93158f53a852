"""A step's own prints masked: while a step runs, what it writes to sys.stdout and sys.stderr reaches them line
by line with every noted secret masked (a line is held until it ends, so a secret written in parts still
matches). What a step writes by other ways (a subprocess, C code, a logging handler made before it ran) is its
own: the README says so."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from mlops.common.secrets import redact

_lock = threading.Lock()
_users: list[int] = [0]  # steps running in this process's threads: the last one puts the streams back


class MaskedStream:
    """A text stream that writes whole lines to `stream`, each with the noted secrets masked."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._held = ""

    def write(self, text: str) -> int:
        """Write each line `text` ends, masked; hold the rest until its line ends (or the stream is flushed)."""
        lines = (self._held + text).split("\n")
        self._held = lines.pop()
        if lines:
            self.stream.write("".join(f"{redact(line)}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        """Write what is held, masked, and flush the stream."""
        if self._held:
            self.stream.write(redact(self._held))
            self._held = ""
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ...: the stream's own
        return getattr(self.stream, name)


@contextmanager
def masked_prints() -> Iterator[None]:
    """Mask what the step writes to sys.stdout and sys.stderr while it runs."""
    with _lock:
        if _users[0] == 0:
            sys.stdout, sys.stderr = MaskedStream(sys.stdout), MaskedStream(sys.stderr)
        _users[0] += 1
    try:
        yield
    finally:
        with _lock:
            _users[0] -= 1
            for stream in (sys.stdout, sys.stderr):
                if isinstance(stream, MaskedStream):
                    stream.flush()
            if _users[0] == 0:
                sys.stdout, sys.stderr = _unmasked(sys.stdout), _unmasked(sys.stderr)


def _unmasked(stream: Any) -> Any:
    return stream.stream if isinstance(stream, MaskedStream) else stream
