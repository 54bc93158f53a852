"""What runs on a Dask worker: a step, in its project's folder, with that project's code as it is on disk now.

A worker outlives commands and may serve several projects; Python keeps the modules it first imported. So
before each step a worker drops another project's modules, and this project's too when one of its files
changed since the worker's last step (a module importing a changed one holds its old objects).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mlops.common import identity, secrets
from mlops.common.errors import MlopsError, StepFailed
from mlops.common.names import one_line
from mlops.common.secrets import redact
from mlops.plan.steps import StepCall
from mlops.run.bytecode import guard_imports
from mlops.run.code import project_files
from mlops.run.runner import run_step


def probe_worker(project: str, probe: str, token: str) -> str:
    """On a worker: say what keeps it from running this project's steps ("" when nothing does)."""
    try:
        seen = Path(probe).read_text()
    except OSError as error:
        seen = f"({error.strerror})"
    if seen != token:
        return (f"does not see this project's outputs at {Path(probe).parent} {seen if seen.startswith('(') else ''}"
                "; workers need the outputs root on a file system they share with doit").replace(" ;", ";")
    if not Path(project).is_dir():
        return f"does not see the project folder {project}; workers need the project on a shared file system"
    return ""


def run_in_project(project: str, call: StepCall, known: secrets.Known) -> dict[str, Any]:
    """On a worker: run the step in the project folder, its modules importable, knowing the secrets doit's process
    knows; return what it read ({"reads": ...}) or its failure as data ({"failed": line, "trace": ...} or
    {"error": line}): a raised task would show the step's parameters in the worker's log, and an exception's
    class is the one of the modules the step loaded, which a worker may have loaded anew."""
    enter_project(project)
    secrets.adopt(known)
    guard_imports()
    forget_project_modules(project)
    before = {os.path.join(project, path): identity.record(path) for path in project_files(call.fn)}
    try:
        return {"reads": run_step(call)}
    except Exception as error:
        return failure(error)
    finally:
        remember_project_modules(project, before)


def failure(error: Exception) -> dict[str, str]:
    """Return a step's failure as data, its kind told by the names of its classes, masked by this process."""
    kinds = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(error).__mro__}
    line = redact(Exception.__str__(error))  # its text as raised: a class loaded anew masks with what it knows
    if f"{StepFailed.__module__}.{StepFailed.__qualname__}" in kinds:
        return {"failed": line, "trace": redact(str(getattr(error, "trace", "")))}
    if f"{MlopsError.__module__}.{MlopsError.__qualname__}" in kinds:
        return {"error": line}
    return {"error": f"{type(error).__name__}: {one_line(line, 300)}"}


_ran: dict[str, list[int] | None] = {}  # on a worker: each project module's file identity as its steps ran it
_projects: list[str] = []  # on a worker: the project folder its last step ran in


def enter_project(project: str) -> None:
    """On a worker: work in the project folder, its modules importable, and none of another project's
    (a worker may serve several projects, whose modules may share names)."""
    os.chdir(project)
    for other in [folder for folder in _projects if folder != project]:
        for name in _loaded(other):
            del sys.modules[name]
        _projects.remove(other)
        if other in sys.path:
            sys.path.remove(other)
        _ran.clear()
    if project not in _projects:
        _projects.append(project)
    if project not in sys.path:
        sys.path.insert(0, project)


def forget_project_modules(project: str) -> None:
    """On a worker: if any project module it imported has changed on disk since, drop them all, so the step
    runs the code on disk now, as doit recorded it (a worker outlives commands; Python keeps what it first
    imported, and a module that imports a changed one holds its old objects)."""
    loaded = _loaded(project)
    if identity.unchanged({path: _ran.get(path) for path in loaded.values()}):
        return
    for name in loaded:
        del sys.modules[name]
    _ran.clear()


def remember_project_modules(project: str, before: dict[str, list[int] | None]) -> None:
    """On a worker, after a step: note each loaded project module's file as it was before the step ran
    (`before`; a file edited meanwhile then differs next time, and a module not seen before is dropped)."""
    for path in _loaded(project).values():
        if path in before:
            _ran[path] = before[path]


def _loaded(project: str) -> dict[str, str]:
    """Return the project's modules loaded in this process: their files by module name."""
    inside = project.rstrip(os.sep) + os.sep  # absolute, as the modules' files are (sys.path holds it so)
    found = {}
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if isinstance(origin, str) and origin.startswith(inside):
            found[name] = origin
    return found
