"""Progress of a long step: a step function that takes a `progress` argument reports through it.

    def prepare(inputs, params, outputs, progress):
        for day in range(days):
            ...
            progress.update(done=day + 1, total=days)

On a terminal a bar is drawn (rich), on stderr, and cleared when the step ends; when stderr is
piped nothing is shown. The step imports nothing of mlops, doit or Hydra for it.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Progress:
    """What a step reports its progress through: `update(done, total, note)`; quiet unless drawn."""

    def __init__(self, draw: Callable[[float, float | None, str], None] | None = None) -> None:
        self._draw = draw

    def update(self, done: float, total: float | None = None, note: str = "") -> None:
        """Say how much is done (of `total`, if known), with an optional short note."""
        if self._draw is not None:
            self._draw(done, total, note)


def takes_progress(function: Callable[..., Any]) -> bool:
    """Say whether a step function declares a `progress` parameter (or takes any keyword)."""
    try:
        return _takes_progress(function)
    except TypeError:  # a callable that cannot be a cache key: its signature read each time
        return _takes_progress.__wrapped__(function)


@functools.lru_cache(maxsize=256)  # asked before every step; a signature costs more than a small step
def _takes_progress(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return "progress" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


@contextmanager
def shown(label: str) -> Iterator[Progress]:
    """Yield the progress of one step: a bar on a terminal, nothing otherwise."""
    if not sys.stderr.isatty():
        yield Progress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[note]}"))
    with Bar(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(label, total=None, note="")

        def draw(done: float, total: float | None, note: str) -> None:
            bar.update(task, completed=done, total=total, note=note)

        yield Progress(draw)
