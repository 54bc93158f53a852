"""doit's console reporter, minus the title line of tasks whose output is the point (print_config), and
quiet when the reader of its output goes away (`doit | head -1`)."""

from __future__ import annotations

import contextlib
import os
from typing import IO, Any

from doit.reporter import ConsoleReporter


class QuietPipe:
    """A stream that stops writing, without a word, once the reader at the other end of the pipe is gone."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        """Write `text`, unless the reader is gone."""
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        """Flush, unless the reader is gone."""
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.gone = True
        # What is still buffered goes nowhere, also when the interpreter flushes it at exit.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class Reporter(ConsoleReporter):  # type: ignore[misc]
    """Report like doit, but let tasks with meta plain_output print clean, pipeable text."""

    def __init__(self, outstream: IO[str], options: Any) -> None:
        super().__init__(QuietPipe(outstream), options)

    def execute_task(self, task: Any) -> None:
        """Print the task's title line, unless its output must stay plain."""
        if not (task.meta or {}).get("plain_output"):
            super().execute_task(task)
