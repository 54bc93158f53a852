"""A sweep's variants, best first: `doit sweep KEY=a,b,...` prints the table without running anything, and
a run of a sweep ends its report with it. The metric and its direction come from the config's `sweep:`
node (default: the first number of the metrics outputs, lower is better)."""

from __future__ import annotations

import math
from typing import Any

from doit.cmd_base import DoitCmdBase

from mlops.common.errors import ConfigError
from mlops.doit_adapter import session
from mlops.doit_adapter.session import Invocation
from mlops.integrations.tracking import metrics
from mlops.plan import Step
from mlops.plan.variants import lineages

DIRECTIONS = ("minimize", "maximize")


def table(started: Invocation, reached: set[str] | None = None) -> str:
    """Return the table of each swept pipeline's variants and their metrics, best first ("" without a sweep): one
    row per variant of that pipeline; only the pipelines a step of which a run `reached`, if given."""
    metric, direction = ranking(started.config.values)
    blocks = []
    for pipeline, rows in lineages(started.variants, started.uses).items():
        if reached is None or any(step.task in reached for steps in rows.values() for step in steps):
            blocks.append(_block(pipeline, {name: _metrics(steps) for name, steps in rows.items()}, metric, direction))
    return "\n".join(blocks)


def _block(pipeline: str, rows: dict[str, dict[str, float]], metric: str, direction: str) -> str:
    """Return one pipeline's table: a head line, then one line per variant, best first."""
    names = sorted({name for values in rows.values() for name in values})
    chosen = metric if metric in names or not names else names[0]
    missing = f"; {metric} is in no metrics output" if metric and chosen != metric else ""
    columns = [chosen, *(name for name in names if name != chosen)] if chosen else names
    sign = 1 if direction == "minimize" else -1

    def rank(label: str) -> tuple[bool, float]:
        value = rows[label].get(chosen, math.nan)
        return (math.isnan(value), 0.0 if math.isnan(value) else sign * value)  # none or NaN: last

    order = sorted(rows, key=rank)
    better = "lower" if direction == "minimize" else "higher"
    width = max(len("variant"), *(len(label) for label in rows))
    lines = [f"sweep of {pipeline}, {len(rows)} variants, best first by {chosen or 'nothing'} "
             f"({better} is better{missing}):",
             "  " + "  ".join([f"{'variant':<{width}}", *(f"{name:>10}" for name in columns)])]
    for label in order:
        values = [_shown(rows[label].get(name)) for name in columns] if rows[label] else ["(no metrics yet)"]
        lines.append("  " + "  ".join([f"{label:<{width}}", *(f"{value:>10}" for value in values)]))
    return "\n".join(lines)


def ranking(values: dict[str, Any]) -> tuple[str, str]:
    """Return the metric variants are ranked by ("": the first one found) and its direction."""
    node = values.get("sweep") or {}
    if not isinstance(node, dict):
        raise ConfigError("sweep: must map metric and direction to values")
    metric, direction = node.get("metric") or "", node.get("direction") or "minimize"
    if not isinstance(metric, str):
        raise ConfigError(f"sweep.metric: '{metric}' must be the name of a number in the metrics outputs")
    if direction not in DIRECTIONS:
        raise ConfigError(f"sweep.direction: '{direction}' is not a direction; choose one of: {', '.join(DIRECTIONS)}")
    return metric, str(direction)


def _metrics(steps: list[Step]) -> dict[str, float]:
    """Return the numbers of a variant's metrics outputs, as made so far."""
    found: dict[str, float] = {}
    for step in steps:
        for output in step.kind.metrics:
            path = step.outputs(step.date)[output]
            try:
                found.update(metrics(path))
            except (OSError, ValueError):
                continue  # not made yet, or not JSON: nothing to show
    return found


def _shown(value: float | None) -> str:
    if value is None:
        return "-"
    return "nan" if math.isnan(value) else f"{value:.4g}"


class Sweep(DoitCmdBase):  # type: ignore[misc]
    """doit command: print a sweep's variants with their metrics, best first, running nothing."""

    name = "sweep"
    doc_purpose = "show a sweep's variants and their metrics, best first (runs nothing)"
    doc_usage = "KEY=a,b,... [KEY=...]"
    doc_description = ("The words are the sweep's, as given to `doit`: e.g. doit sweep "
                       "pipelines.pipeline_1.train.alpha=0.1,0.3,1.0")
    cmd_options = ()

    def _execute(self, pos_args: list[str] | None = None) -> int:
        started = session.current()
        text = table(started) if started is not None else ""
        if not text:
            self.outstream.write("mlops: no sweep: give swept values, e.g. "
                                 "doit sweep pipelines.pipeline_1.train.alpha=0.1,0.3\n")
            return 3
        self.outstream.write(text + "\n")
        return 0
