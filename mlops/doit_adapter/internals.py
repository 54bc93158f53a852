"""The only reader of doit's private or undocumented internals; tests/test_internals.py checks each one.

- `doit_cmd._CMDLINE_VARS`: the command line's key=value words in order (`get_var` reads one by name;
  doit has no public list of them).
- `Globals.dep_manager`: the running command's dependency manager, for its backend (our state store)
  and the values saved for a task; doit hands it to commands, not to actions.
- `"_values_:"`: the key of a task's values in doit's state; `"deps:"`: the key that
  `save_success` writes last for a task (the store journals the record then).
- `status.reasons`: the reasons of `get_status`, by key (`doit why` explains them).
- `task.targets` set in an up-to-date check: a dated step's target depends on its --date option.
- `DefaultUpdate._non_default_keys`: the run options the command line gave (DOIT_CONFIG does not override
  them), to know the state file and backend doit will open before it opens them.
"""

from __future__ import annotations

from typing import Any

from doit import doit_cmd
from doit.globals import Globals

VALUES_KEY = "_values_:"
LAST_SAVED_KEY = "deps:"
REASON_KEYS = frozenset({"uptodate_false", "has_no_dependencies", "missing_target", "checker_changed",
                         "added_file_dep", "removed_file_dep", "changed_file_dep", "missing_file_dep"})


def command_line_words() -> list[tuple[str, str]]:
    """Return the command line's key=value words, in order, as doit parsed them."""
    return list((doit_cmd._CMDLINE_VARS or {}).items())


def state_backend() -> Any:
    """Return the running command's state backend, or None outside a command."""
    return getattr(Globals.dep_manager, "backend", None)


def saved_values(task_name: str) -> dict[str, Any]:
    """Return the values doit saved for a task last time (empty outside a command)."""
    manager = Globals.dep_manager
    return dict(manager.get_values(task_name)) if manager is not None else {}


def status_reasons(status: Any) -> dict[str, Any]:
    """Return the reasons doit's get_status found for a task to run, by key."""
    return dict(status.reasons)


def set_targets(task: Any, targets: list[str]) -> None:
    """Point doit's missing-target check at these files (for the date this run asks for)."""
    task.targets = targets


def run_option(options: Any, config: dict[str, Any], name: str) -> Any:
    """Return the run option doit will use: the command line's, else dodo.py's DOIT_CONFIG, else doit's default."""
    if name in getattr(options, "_non_default_keys", ()):
        return options.get(name)
    return config.get(name, options.get(name))
