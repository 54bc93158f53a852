"""`doit dumpdb`: print the env's state, snapshot and journal together (replaces doit's dbm reader)."""

from __future__ import annotations

import json

from doit.cmd_base import DoitCmdBase

from mlops.state.store import StateDB, read_state


class DumpDB(DoitCmdBase):  # type: ignore[misc]
    """doit command: print each task's saved record as JSON (secret values are stored as digests)."""

    name = "dumpdb"
    doc_purpose = "print the saved state of every task, as JSON"
    doc_usage = ""
    doc_description = "The state of the env option the command line picks (env=prod: outputs/prod/)."
    cmd_options = ()

    def _execute(self) -> int:
        backend = self.dep_manager.backend
        if not isinstance(backend, StateDB):
            self.outstream.write(f"the state is kept by doit's {type(backend).__name__}; see doit's own dumpdb\n")
            return 1
        state = read_state(backend.name, backend.journal)
        self.outstream.write(json.dumps(state, indent=2, sort_keys=True) + "\n")
        return 0
