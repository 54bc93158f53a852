"""Progress of a long step: a bar on a terminal (a real pseudo-terminal here), nothing when piped."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

from helpers import DOIT, edit, environment, run_doit

COUNTING = '''

def counting(inputs, params, outputs, progress):
    for done in range(1, 6):
        progress.update(done, 5, "chunks")
    outputs["model"].write_text("counted")
'''


def on_a_terminal(project: Path, *words: str) -> tuple[int, str]:
    """Run doit with stdout and stderr on a pseudo-terminal; return its exit code and what the terminal got."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([DOIT, *words], cwd=project, env=environment({"COLUMNS": "100"}),
                               stdout=follower, stderr=follower)
    os.close(follower)
    received = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal's other end closed: the process is done with it
            break
        if not chunk:
            break
        received += chunk
    os.close(leader)
    return process.wait(timeout=60), received.decode(errors="replace")


def test_a_step_that_takes_progress_shows_a_bar_on_a_terminal_only(ran_project: Path) -> None:
    with (ran_project / "tiny_steps.py").open("a") as steps:
        steps.write(COUNTING)
    edit(ran_project / "conf/pipelines/a.yaml", "fn: tiny_steps.train\n", "fn: tiny_steps.counting\n")
    code, shown = on_a_terminal(ran_project, "train:a")
    assert code == 0, shown
    assert "train:a" in shown and "chunks" in shown and "100%" in shown
    assert (ran_project / "outputs/dev/a/train/model.pkl").read_text() == "counted"
    edit(ran_project / "conf/pipelines/a.yaml", "fn: tiny_steps.counting\n", "fn: tiny_steps.counting  # piped\n")
    (ran_project / "outputs/dev/a/train/model.pkl").unlink()
    piped = run_doit(ran_project, "train:a")
    assert piped.returncode == 0 and "chunks" not in piped.stdout + piped.stderr
