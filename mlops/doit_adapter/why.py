"""`doit why [TASK ...]`: one line per reason each task will run (a doit command plugin)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from doit.cmd_base import DoitCmdBase
from doit.exceptions import InvalidCommand

from mlops.common.errors import ConfigError
from mlops.common.names import check_date
from mlops.doit_adapter import internals
from mlops.doit_adapter.check import StepCheck
from mlops.doit_adapter.tasks import date_value, takes_date


class StatusCommand(DoitCmdBase):  # type: ignore[misc]
    """A doit command that knows, for each selected task, the reasons it will run (`doit why`, `doit graph`)."""

    cmd_options: tuple[dict[str, Any], ...] = ()

    def statuses(self, names: list[str], date: str | None = None) -> list[tuple[Any, list[str]]]:
        """Return each selected task, upstream first, with the reasons it will run (none: up to date)."""
        tasks = {task.name: task for task in self.task_list}
        will_run: dict[str, str] = {}  # target path -> the task that will make it again
        found: list[tuple[Any, list[str]]] = []
        for task in self._selected(tasks, names or self.sel_tasks or []):
            if date is not None and takes_date(task):
                task.options = {**(task.options or {}), "date": date}
            reasons = list(self._reasons(task, tasks))
            if not reasons:
                upstream = sorted({will_run[dep] for dep in task.file_dep if dep in will_run} |
                                  {dep for dep in task.task_dep if dep in will_run.values()})
                reasons = [f"upstream {name} will run first; this runs if its output changes" for name in upstream]
            if reasons:
                will_run.update({target: task.name for target in task.targets})
            found.append((task, reasons))
        return found

    def _selected(self, tasks: dict[str, Any], names: list[str]) -> list[Any]:
        for name in names:
            if name not in tasks:
                raise InvalidCommand(f"'{name}' is not a task; `doit list --all` shows them")
        chosen: list[str] = []
        todo = list(names)
        while todo:
            name = todo.pop(0)
            group = [sub for sub in tasks[name].task_dep if tasks[sub].subtask_of == name]
            if group:  # a group: its subtasks
                todo[:0] = group
            elif tasks[name].actions:
                chosen.append(name)
            else:  # a swept step, whose sweep's variants stand in for it (a kind no pipeline has: nothing)
                todo[:0] = list(tasks[name].task_dep)
        return _upstream_first([tasks[name] for name in dict.fromkeys(chosen)])

    def _reasons(self, task: Any, tasks: dict[str, Any]) -> Iterator[str]:
        status = self.dep_manager.get_status(task, tasks, get_log=True)
        if status.status == "up-to-date":
            return
        reasons = internals.status_reasons(status)
        made_here = {target for other in tasks.values() for target in other.targets}
        step = next((check.step for check, _, _ in task.uptodate if isinstance(check, StepCheck)), None)
        origins = {path: step.input_origin(name) for name, path in step.inputs.items()} if step else {}
        for dep in sorted(reasons.get("missing_file_dep", [])):
            if dep not in made_here:  # one an upstream step makes is no error: it runs first
                where = origins.get(dep, "no step makes it")
                yield f"input missing: {dep} ({where}); the step cannot run until it exists"
        values = self.dep_manager.get_values(task.name)
        explained, never_made = [], False
        for check, _, _ in reasons.get("uptodate_false", []):
            if isinstance(check, StepCheck):
                explained += check.explain(values, task)
                never_made = never_made or check.made(values, task) is None
            else:
                explained.append(f"up-to-date check is false: {check}")
        yield from explained
        if never_made:
            return  # nothing was recorded to compare the files with: doit's file reasons would all be noise
        yield from _file_reasons(task, reasons, covered={line.rsplit(": ", 1)[-1] for line in explained})


class Why(StatusCommand):
    """doit command: say why tasks will run, one line per reason."""

    name = "why"
    doc_purpose = "say why tasks will run, one line per reason"
    doc_usage = "[TASK ...] [--date YYYY-MM-DD]"
    doc_description = ("With no task: every default task. A group (train) means all its subtasks.\n"
                       "Prints nothing for a task that is up to date, unless it was named.")

    def _execute(self, pos_args: list[str] | None = None) -> int:
        names, date = _dated_words(pos_args or [])
        for task, reasons in self.statuses(names, date):
            if not reasons and task.name in names:
                reasons = ["up to date"]
            for reason in reasons:
                self.outstream.write(f"{task.name}: {reason}\n")
        return 0


def _dated_words(words: list[str]) -> tuple[list[str], str | None]:
    """Split `why`'s words into task names and the day a `--date X` (or `--date=X`) asks for."""
    names, date, rest = [], None, iter(words)
    for word in rest:
        value = date_value(word, rest)
        if value is not None:
            date = value
            try:
                check_date(date, "--date")
            except ConfigError as error:
                sys.exit(f"mlops: error: {error}")
        elif word.startswith("-"):
            raise InvalidCommand(f"{word}: why knows one option, --date YYYY-MM-DD (for dated steps)")
        else:
            names.append(word)
    return names, date


def _file_reasons(task: Any, reasons: dict[str, Any], covered: set[str]) -> Iterator[str]:
    """Say what doit found of the task's files, in a stable order, without what the check already said."""
    if reasons.get("has_no_dependencies"):
        yield "always runs (it has no dependencies)"
    for target in sorted(reasons.get("missing_target", [])):
        yield f"missing output: {target}"
    if reasons.get("checker_changed"):
        yield "file checker changed: {} -> {}".format(*reasons["checker_changed"])
    for dep in sorted(reasons.get("added_file_dep", [])):
        yield f"new input: {dep}"
    for dep in sorted(reasons.get("removed_file_dep", [])):
        yield f"input no longer used: {dep}"
    for dep in sorted(set(reasons.get("changed_file_dep", [])) - covered):
        yield f"input changed: {dep}"


def _upstream_first(selected: list[Any]) -> list[Any]:
    """Order tasks so each comes after the selected tasks whose targets it depends on."""
    maker = {target: task for task in selected for target in task.targets}
    ordered: dict[str, Any] = {}

    def visit(task: Any, path: tuple[str, ...] = ()) -> None:
        if task.name in ordered or task.name in path:
            return
        for dep in sorted(task.file_dep):
            if dep in maker:
                visit(maker[dep], (*path, task.name))
        ordered[task.name] = task

    for task in selected:
        visit(task)
    return list(ordered.values())
