"""doit's console reporter, minus the title line of tasks whose output is the point (print_config)."""

from __future__ import annotations

from typing import Any

from doit.reporter import ConsoleReporter


class Reporter(ConsoleReporter):  # type: ignore[misc]
    """Report like doit, but let tasks with meta plain_output print clean, pipeable text."""

    def execute_task(self, task: Any) -> None:
        """Print the task's title line, unless its output must stay plain."""
        if not (task.meta or {}).get("plain_output"):
            super().execute_task(task)
