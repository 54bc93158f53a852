"""Run one step: call its function with inputs, parameters and staged outputs; publish outputs on success."""

from __future__ import annotations

import copy
import functools
import importlib
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.common import identity
from mlops.common.errors import StepError
from mlops.plan.functions import step_function
from mlops.plan.steps import StepCall
from mlops.run import progress, provenance, signals
from mlops.run.bytecode import checked_bytecode
from mlops.run.code import project_files
from mlops.run.failure import import_failed, step_failed
from mlops.run.masking import masked_prints
from mlops.run.progress import takes_progress
from mlops.run.reads import Reads, TrackedParams, shown_reads
from mlops.run.signals import Stopped
from mlops.state.digests import file_digest

STAGING = ".staging-"
OUTPUT_DIGESTS = "output_digests"  # in what run_step returns beside the reads: each output as published


def run_step(call: StepCall) -> dict[str, Any]:
    """Run the step; outputs reach their final paths only if it succeeds; return the config it read (and,
    under OUTPUT_DIGESTS, the digest of each output published)."""
    checked_bytecode(project_files(call.fn), once=True)  # never the bytecode of an older source
    function = load_function(call.fn)
    targets = _targets(call)
    folder = targets[0].parent
    token, staged = _staging(folder, call.outputs, call.task)
    described = folder / f"{token}{provenance.FILE}"
    try:
        reads, runner = Reads(), Reads()  # what the step read of its params; what the runner read for it
        for key, value in call.runner_reads.items():
            runner.value((key,), value)
        started = provenance.now()
        _call(function, call, TrackedParams(copy.deepcopy(call.params), reads), staged)
        signals.checkpoint()  # a stop that arrived while the step ran, its exception lost: nothing is published
        missing = [name for name, path in staged.items() if not path.is_file()]
        if missing:
            raise StepError(f"{call.fn} did not write outputs['{missing[0]}']; "
                            "a step must write every output it is handed")
        made = {**reads.to_json(), "runner": runner.to_json()}
        ended = provenance.now()
        # Each output hashed once, here: the provenance and the step's record both take this digest.
        digested = {call.outputs[name]: _stamp(path) for name, path in staged.items()}
        record = provenance.record(call.provenance, shown_reads(made), call.outputs,
                                   {path: stamp["digest"] for path, stamp in digested.items()}, started,
                                   ended) if call.provenance else None
        if record:
            provenance.write(folder, described, record)
        for name, path in staged.items():
            os.replace(path, call.outputs[name])
        if record:  # last: it describes the outputs now in place
            os.replace(described, folder / provenance.FILE)
        return {**made, OUTPUT_DIGESTS: digested}
    finally:
        for path in _starting(folder, token):  # what a failed step staged, and anything it wrote beside it
            _remove(path)


def _staging(folder: Path, outputs: dict[str, str], task: str) -> tuple[str, dict[str, Path]]:
    """Return this run's staging prefix and the staged path of each output, after removing the staged files
    (or, from older versions, folders) a stopped run of this step left (runs of one task never overlap), said
    in one line with the process that left them (its id is in the prefix).

    Staged beside the outputs, publishing is a rename in one folder (a folder of its own would cost a
    directory made and removed per step: most of a small step's time on ext4). Absolute: a step may change
    the working folder; it is set back after the step."""
    stale = _starting(folder, STAGING)
    if stale:
        left = sorted({path.name[len(STAGING):].partition("-")[0] for path in stale})
        print(f"mlops: {task}: removed the unfinished outputs that process {', '.join(left)} left "
              "(stopped before it published them)", file=sys.stderr)
    for path in stale:
        _remove(path)
    token = f"{STAGING}{os.getpid()}-{secrets.token_hex(4)}-"
    return token, {name: (folder / f"{token}{name}-{Path(path).name}").absolute() for name, path in outputs.items()}


def _starting(folder: Path, prefix: str) -> list[Path]:
    """Return the entries of `folder` whose name starts with `prefix` (a glob would compile a pattern per step)."""
    with os.scandir(folder) as entries:
        return [folder / entry.name for entry in entries if entry.name.startswith(prefix)]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _stamp(path: Path) -> dict[str, Any]:
    """Return the digest of a staged output and what a rename into place keeps of its identity (inode, size,
    mtime_ns; the device too, but a Dask worker may see another device number for a shared file system):
    while the published file still has those, it is the file hashed."""
    info = os.stat(path)
    return {"moved": identity.of(info)[1:4], "digest": file_digest(path)}


def _targets(call: StepCall) -> list[Path]:
    """Return the step's output paths, each checked to be a file path inside the outputs root."""
    targets = [Path(path) for path in call.outputs.values()]
    for target in targets:
        if target.is_dir():
            raise StepError(f"{target} is a folder, where the step's output file goes; move it away")
        if not target.parent.is_dir():  # a stat: most steps' folders are there from their last run
            target.parent.mkdir(parents=True, exist_ok=True)
        if call.root and not inside(str(target), call.root):
            raise StepError(f"{target} resolves outside {call.root}/ (a symbolic link?); "
                            "outputs must stay inside the outputs root")
    return targets


def _call(function: Callable[..., Any], call: StepCall, params: TrackedParams, staged: dict[str, Path]) -> None:
    """Call the step function; anything it raises is its failure, and the working folder is set back."""
    inputs = {name: Path(path) for name, path in call.inputs.items()}
    folder = os.getcwd()
    try:
        if takes_progress(function):  # the bar on the terminal's own stream; the step's prints masked
            with progress.shown(call.task) as reporter, masked_prints():
                function(inputs=inputs, params=params, outputs=dict(staged), progress=reporter)
        else:
            with masked_prints():
                function(inputs=inputs, params=params, outputs=dict(staged))
    except Stopped:
        raise
    except BaseException as error:  # the step's own, KeyboardInterrupt it raised itself included
        raise step_failed(call, error, error.__traceback__) from None
    finally:
        os.chdir(folder)


def inside(path: str, root: str) -> bool:
    """Say whether `path`, with every symbolic link resolved, lies inside the folder `root`."""
    return os.path.realpath(path).startswith(_real(os.path.abspath(root)) + os.sep)


@functools.lru_cache(maxsize=16)
def _real(root: str) -> str:
    """Return the outputs root with its links resolved, once per process (it is asked before every step)."""
    return os.path.realpath(root)


def load_function(dotted: str) -> Callable[..., Any]:
    """Import and return the callable named by a dotted path such as package.module.function (or Class.method)."""
    found = step_function(dotted)
    module_name, attributes = (found.module, found.attributes) if found else (dotted.rpartition(".")[0],
                                                                              (dotted.rpartition(".")[2],))
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise StepError(f"cannot load step function '{dotted}': {error}") from None
    except (Exception, SystemExit) as error:  # the module's own code failed as it was imported
        raise import_failed(dotted, module_name, error) from None
    try:
        for attribute in attributes:
            target = getattr(target, attribute)
    except AttributeError as error:
        raise StepError(f"cannot load step function '{dotted}': {error}") from None
    if not callable(target):
        raise StepError(f"'{dotted}' is not a function (it is a {type(target).__name__})")
    return target  # type: ignore[no-any-return]
