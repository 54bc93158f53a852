"""A step's own failure, told as the step's frames of the traceback and one line naming the step."""

from __future__ import annotations

import json
import traceback
from types import TracebackType

from mlops.common.errors import StepFailed
from mlops.common.names import one_line
from mlops.config.model import masked
from mlops.plan.steps import StepCall

SHOWN = 300  # characters of the parameters shown


def step_failed(call: StepCall, error: BaseException, call_site: TracebackType | None) -> StepFailed:
    """Return the failure of `call`'s function: the frames from the function down, then one line.

    `call_site` is the traceback entry of the runner's call of the function: the frames above it
    are the framework's and doit's, noise to the author of the step.
    """
    frames = call_site.tb_next if call_site is not None else error.__traceback__
    if isinstance(error, SystemExit):
        what = f"called sys.exit({error.code!r}); a step reports a failure by raising an exception"
    else:
        what = f"raised {type(error).__name__}: {one_line(_text(error), SHOWN)}"
    try:
        params = json.dumps(masked(call.params), default=str, sort_keys=True)
    except TypeError:  # keys of mixed types (YAML's 1 and "a") cannot be sorted: in the section's order
        params = json.dumps(masked(call.params), default=str)
    shown = params if len(params) <= SHOWN else params[:SHOWN] + "..."
    trace = "".join(traceback.format_exception(type(error), error, frames)).rstrip()
    return StepFailed(f"{call.fn} {what} (params: {shown})", trace)


def import_failed(dotted: str, module: str, error: BaseException) -> StepFailed:
    """Return the failure of importing a step function's module: the frames of the project's code, one line."""
    # The first frame is the runner's call of the import; the import system's own are noise too.
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)[1:]
              if not frame.filename.startswith("<frozen") and "/importlib/" not in frame.filename]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames),
             *traceback.format_exception_only(type(error), error)]
    what = f"{type(error).__name__}: {one_line(_text(error), SHOWN)}"
    summary = f"cannot load step function '{dotted}': importing {module} raised {what}"
    return StepFailed(summary, "".join(lines).rstrip())


def _text(error: BaseException) -> str:
    """Return an exception's message, even when its own __str__ fails."""
    try:
        return str(error)
    except Exception:
        return "(its message cannot be shown: str() of it failed)"
