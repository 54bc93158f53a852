"""`doit tracking [KEY=VALUE ...]`: the results waiting to be logged to MLflow, then logged now (a doit command)."""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

from doit.cmd_base import DoitCmdBase

from mlops.common.names import one_line
from mlops.doit_adapter import session
from mlops.integrations import outbox
from mlops.integrations.logger import flush
from mlops.integrations.tracking_settings import Settings


class Tracking(DoitCmdBase):  # type: ignore[misc]
    """doit command: show what waits in the env's tracking outbox, then send it to MLflow and wait for it."""

    name = "tracking"
    doc_purpose = "show the results waiting to be logged to MLflow, then log them (waits for a running logger)"
    doc_usage = "[KEY=VALUE ...]"
    doc_description = "The words choose the env and the tracking settings, as for `doit`: e.g. doit tracking env=prod"
    cmd_options: tuple[dict[str, Any], ...] = ()

    def _execute(self, pos_args: list[str] | None = None) -> int:
        started = session.current()
        if started is None:
            return 0
        settings = Settings.of(started.config.values)
        if not settings.use:
            self.outstream.write("tracking is off here (tracking.use is false): nothing is logged\n")
            return 0
        folder = outbox.folder_of(started.env_dir)
        try:  # what waits is shown once the outbox is this command's (a running logger sends first)
            done = flush(folder, settings, shown=lambda events: self.outstream.write(waiting(events, settings)))
        except Exception as error:  # MLflow, its database or its server: the events stay
            sys.exit(f"mlops: error: tracking: not logged to {settings.shown_uri} "
                     f"({one_line(f'{type(error).__name__}: {error}', 300)}); the results wait in {folder.name}/ "
                     "of the env's folder: make the store or server usable and run `doit tracking` again")
        runs = f": {', '.join(done.runs)}" if done.runs else ""
        self.outstream.write(f"logged {done.sent} result{'' if done.sent == 1 else 's'} to {settings.shown_uri}, "
                             f"experiment {settings.experiment}{runs}\n")
        if done.waiting:
            self.outstream.write(f"{done.waiting} still being saved by a running command: logged when it ends\n")
        held = outbox.held(folder)
        if held:
            kept = "1 result MLflow refused is" if held == 1 else f"{held} results MLflow refused are"
            self.outstream.write(f"{kept} kept in {folder.name}/ as *{outbox.HELD} (see the lines above or "
                                 f"{outbox.LOG})\n")
        return 0


def waiting(events: list[dict[str, Any]], settings: Settings) -> str:
    """Return the lines on the events that wait: how many, and the steps of each pipeline."""
    if not events:
        return f"nothing waits to be logged to {settings.shown_uri}\n"
    steps: dict[str, list[str]] = defaultdict(list)
    for event in events:
        pipeline = f"{event.get('pipeline')}{' ' + str(event['variant']) if event.get('variant') else ''}"
        steps[pipeline].append(f"{event.get('kind')}{' ' + str(event['date']) if event.get('date') else ''}")
    count = "1 result waits" if len(events) == 1 else f"{len(events)} results wait"
    lines = [f"{count} to be logged to {settings.shown_uri}:"]
    lines += [f"  {pipeline}: {', '.join(kinds)}" for pipeline, kinds in steps.items()]
    return "\n".join(lines) + "\n"
