"""The step tasks a `doit run` of named steps makes: those steps and the steps they depend on.

doit builds every task of dodo.py before it looks at the names on the command line; at a thousand
pipelines that is most of the time of `doit train:p_0`. When every word names a step task or a
step kind, only those steps and the steps whose outputs they read (their closure) become tasks.
Once the project's own tasks are made, doit is handed what the words reach: a task of the
project's own that a chosen step reads a file of is kept, and a step it names (task_dep, setup,
calc_dep, or a file_dep on its output) gets its task; a task no word reaches is left out, as it
would not run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from doit.loader import generate_tasks

from mlops.plan import Step

Creator = Callable[[], Any]


class Selection:
    """Which planned steps become doit tasks in this command (all, unless `choose` narrowed them)."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = steps
        self.by_task = {step.task: step for step in steps}
        self.only: set[str] | None = None  # None: every step
        self.words: list[str] = []  # the words that chose them
        self.kinds: set[str] = set()  # the step kinds: a name that reaches a kind's group reaches all its steps
        self.made: set[str] = set()

    def choose(self, words: Iterable[str], kinds: Iterable[str]) -> None:
        """Narrow to the closure of the steps `words` name, if each word names a step task or a step kind."""
        words, kinds = list(words), set(kinds)
        if not words or any(word not in self.by_task and word not in kinds for word in words):
            return  # no word (the default tasks), an option, a wildcard, or a task of the project's own
        named = [step for step in self.steps if step.task in words or step.kind.name in words]
        self.only, self.words, self.kinds = self._closure(named), words, kinds

    def groups_only(self) -> None:
        """Make no step's task, only the kinds' groups: what `doit list` shows without --all or task names."""
        self.only = set()

    def take(self, steps: Iterable[Step]) -> Iterator[Step]:
        """Yield the steps to make tasks of now: chosen, and not made yet."""
        for step in steps:
            if (self.only is None or step.task in self.only) and step.task not in self.made:
                self.made.add(step.task)
                yield step

    def complete(self, tasks: list[Any], creators: dict[str, Creator]) -> list[Any]:
        """Return the tasks the chosen words reach (through task_dep, setup, calc_dep and files made by
        another task), making the task of every step they reach that was left out with its kind's creator
        (`creators` by kind). The project's own tasks that no chosen word reaches are left out. A dated step's
        inputs are no doit file dependencies (see tasks.step_task): the task making one comes first by task_dep."""
        return self._wired(self._reaching(tasks, creators))

    def _wired(self, tasks: list[Any]) -> list[Any]:
        """Make each dated step's task depend on the tasks that make its inputs (doit orders file deps itself)."""
        makers = {path: task.name for task in tasks for path in task.targets}
        for task in tasks:
            step = self.by_task.get(task.name)
            if step is not None and step.kind.dated:
                task.task_dep.extend(maker for path in step.inputs.values()
                                     if (maker := makers.get(path)) is not None and maker not in task.task_dep)
        return tasks

    def _reaching(self, tasks: list[Any], creators: dict[str, Creator]) -> list[Any]:
        if self.only is None or not self.words:
            return tasks
        while True:
            by_name = {task.name: task for task in tasks}
            reached = self._reached(by_name)
            left_out = [self.by_task[name] for name in reached if name in self.by_task and name not in by_name]
            if not left_out:
                return [task for task in tasks if task.name in reached]
            self.only |= self._closure(left_out)
            for kind, creator in creators.items():
                for task in generate_tasks(kind, creator(), creator.__doc__):
                    if task.name == kind:  # the group, made again by generate_tasks: keep the first one
                        by_name[kind].task_dep.extend(task.task_dep)
                    else:
                        tasks.append(task)

    def _reached(self, by_name: dict[str, Any]) -> set[str]:
        """Return the names of the tasks the chosen words reach, steps not made yet included."""
        makers = {path: step.task for path, step in self._makers.items()}
        makers.update({path: task.name for task in by_name.values() for path in task.targets})
        reached: set[str] = set()
        todo = list(self.words)
        while todo:
            name = todo.pop()
            if name in reached:
                continue
            reached.add(name)
            if name in self.kinds:  # the group made lists only the steps made so far
                todo.extend(step.task for step in self.steps if step.kind.name == name)
            task = by_name.get(name)
            if task is not None:
                todo.extend([*task.task_dep, *task.setup_tasks, *task.calc_dep])
                step = self.by_task.get(name)
                inputs = {*task.file_dep, *(step.inputs.values() if step is not None else ())}
                todo.extend(makers[path] for path in inputs if path in makers)
        return reached

    @functools.cached_property
    def _makers(self) -> dict[str, Step]:
        """Return the step that makes each output path."""
        return {path: step for step in self.steps for path in step.outputs(step.date).values()}

    def _closure(self, named: list[Step]) -> set[str]:
        """Return the tasks of `named` and of every step they need, transitively."""
        makers = self._makers
        closure: set[str] = set()
        while named:
            step = named.pop()
            if step.task in closure:
                continue
            closure.add(step.task)
            named.extend(self.by_task[task] for task in step.upstream if task in self.by_task)
            named.extend(makers[path] for path in step.inputs.values() if path in makers)
        return closure
