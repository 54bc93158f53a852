"""doit's console reporter, minus the title line of tasks whose output is the point (print_config), quiet
when the reader of its output goes away (`doit | head -1`), with a report of the run at the end."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from doit.reporter import ConsoleReporter

from mlops.doit_adapter import noop, session
from mlops.doit_adapter.backend import ADOPTED, ELAPSED, WAITED
from mlops.doit_adapter.tasks import STEP_MARK
from mlops.run import signals


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
    """Report like doit, but let tasks with meta plain_output print clean, pipeable text; after a run
    that executed something, a short report on stderr: what ran and how long it took, how many were up
    to date, what failed and why, where the outputs are."""

    def __init__(self, outstream: IO[str], options: Any) -> None:
        super().__init__(QuietPipe(outstream), options)
        self.report = RunReport()

    def execute_task(self, task: Any) -> None:
        """Print the task's title line, unless its output must stay plain; a step's line waits for its
        outcome: another run may have made it meanwhile (then it did not run here)."""
        signals.checkpoint()  # a stop whose exception a finalizer swallowed: no task starts after it
        if task.actions:
            _spoil()
        meta = task.meta or {}
        if not meta.get("plain_output"):
            if not meta.get(STEP_MARK):
                super().execute_task(task)
            self.report.started(task)

    def add_success(self, task: Any) -> None:
        """Print a step's line (`.` ran; `~` taken from another run), and note the duration."""
        super().add_success(task)
        values = task.values or {}
        if (task.meta or {}).get(STEP_MARK):
            if values.get(ADOPTED):
                self.write(f"~  {task.title()} (made by another run meanwhile, as this run would make it)\n")
            else:
                waited = " (after waiting for another run of it)" if values.get(WAITED) else ""
                self.write(f".  {task.title()}{waited}\n")
        self.report.finished(task, adopted=bool(values.get(ADOPTED)), seconds=values.get(ELAPSED))

    def add_failure(self, task: Any, fail: Any) -> None:
        """Report the failure as doit does (a step's line first), and note its last line for the report."""
        _spoil()
        if (task.meta or {}).get(STEP_MARK) and task.executed:
            self.write(f".  {task.title()}\n")
        super().add_failure(task, fail)
        self.report.failed(task, fail.get_msg())

    def skip_uptodate(self, task: Any) -> None:
        """Print the task's up-to-date line, and count it."""
        super().skip_uptodate(task)
        self.report.up_to_date(task)
        for fingerprint in noop.CURRENT:
            fingerprint.saw(task, bool((task.meta or {}).get(STEP_MARK)))

    def skip_ignore(self, task: Any) -> None:
        """Print the task's ignored line; a run that ignores a task is no no-op."""
        _spoil()
        super().skip_ignore(task)

    def runtime_error(self, msg: str) -> None:
        """Report doit's error; the run is no no-op."""
        _spoil()
        super().runtime_error(msg)

    def complete_run(self) -> None:
        """Finish as doit does, then print the report; a no-op's fingerprint is written (see noop)."""
        super().complete_run()
        if sys.exc_info()[0] is not None:  # the run stops on an error or a signal
            _spoil()
        for fingerprint in noop.CURRENT:
            fingerprint.write()
        current = session.current()
        reached = self.report.reached
        text = self.report.text(str(current.env_dir) if current else "", [line(reached) for line in session.REPORTED])
        if text:
            with contextlib.suppress(OSError):
                sys.stderr.write(text)
                sys.stderr.flush()


def _spoil() -> None:
    for fingerprint in noop.CURRENT:
        fingerprint.spoil()


class RunReport:
    """What one run did, task by task."""

    def __init__(self) -> None:
        self.starts: dict[str, float] = {}
        self.ran: list[tuple[str, float]] = []
        self.failures: list[tuple[str, str]] = []
        self.adopted: list[str] = []
        self.current = 0
        self.reached: set[str] = set()  # every task the run reached: ran, taken, up to date or failed

    def started(self, task: Any) -> None:
        """Note when a task with actions starts."""
        self.reached.add(task.name)
        if task.actions:
            self.starts[task.name] = time.monotonic()

    def finished(self, task: Any, adopted: bool = False, seconds: float | None = None) -> None:
        """Note a task that ran to success, with its duration (`seconds`, as its action measured it, else
        since it started), or that another run's result was taken."""
        if adopted:
            self.adopted.append(task.name)
        elif task.name in self.starts:
            self.ran.append((task.name, seconds if seconds is not None else time.monotonic() - self.starts[task.name]))

    def failed(self, task: Any, message: str) -> None:
        """Note a failed task with the last line of its message (the one-line reason); a task that did not
        start because a task it needs failed is told as such."""
        self.reached.add(task.name)
        if not task.actions:
            return
        if not task.executed:
            self.failures.append((task.name, "not run: a task it needs failed"))
            return
        lines = [line for line in message.splitlines() if line.strip()]
        reason = lines[-1] if lines else "failed"
        self.failures.append((task.name, "failed: " + reason.removeprefix(f"{task.name}: ")))

    def up_to_date(self, task: Any) -> None:
        """Count a task found up to date."""
        self.reached.add(task.name)
        if task.actions:
            self.current += 1

    def text(self, outputs: str, extra: Sequence[str] = ()) -> str:
        """Return the report, with the `extra` texts' lines, or nothing when the run executed nothing."""
        if not self.ran and not self.failures and not self.adopted:
            return ""
        where = f" (outputs in {outputs}/)" if outputs else ""
        failed = sum(1 for _, reason in self.failures if reason.startswith("failed"))
        taken = f", {len(self.adopted)} made by another run" if self.adopted else ""
        head = f"mlops: {len(self.ran)} ran, {self.current} up to date{taken}, {failed} failed{where}"
        width = max(len(name) for name in [*(n for n, _ in self.ran), *(n for n, _ in self.failures), *self.adopted])
        rows = [f"  {name:<{width}}  {seconds:.1f} s" for name, seconds in self.ran]
        rows += [f"  {name:<{width}}  made by another run meanwhile" for name in self.adopted]
        rows += [f"  {name:<{width}}  {reason}" for name, reason in self.failures]
        rows += [f"  {line}" for text in extra for line in text.splitlines()]
        return "\n".join([head, *rows]) + "\n"
