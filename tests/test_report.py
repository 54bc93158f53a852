"""The report at the end of a run: what ran and how long it took, what was up to date, what failed and why."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import run_doit

FAILS = "\n\ndef fails(inputs, params, outputs):\n    raise ValueError('no')\n"


def report(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    start = next(index for index, line in enumerate(lines) if re.match(r"mlops: \d+ ran, ", line))
    return [re.sub(r"\d+\.\d s$", "#.# s", line) for line in lines[start:]]


def test_a_run_reports_what_ran_what_was_up_to_date_and_what_failed(ran_project: Path) -> None:
    with (ran_project / "tiny_steps.py").open("a") as steps:
        steps.write(FAILS)
    result = run_doit(ran_project, "--continue", "pipelines.a.train.fn=tiny_steps.fails",
                      "pipelines.b.train.alpha=0.7")
    assert result.returncode != 0
    assert report(result.stderr) == [
        "mlops: 3 ran, 2 up to date, 1 failed (outputs in outputs/dev/)",
        "  train:b     #.# s",
        "  evaluate:b  #.# s",
        "  predict:b   #.# s",
        '  train:a     failed: tiny_steps.fails raised ValueError: no (params: {"alpha": 0.5, "api_token": "", '
        '"unused": 1})',
        "  evaluate:a  not run: a task it needs failed",
        "  predict:a   not run: a task it needs failed",
    ]


def test_nothing_to_report_prints_nothing_and_other_reporters_stay_clean(ran_project: Path) -> None:
    assert run_doit(ran_project).stderr == ""
    assert run_doit(ran_project, "list").stderr == ""
    assert run_doit(ran_project, "print_config").stderr == ""
    result = run_doit(ran_project, "--reporter", "json", "pipelines.a.train.alpha=0.9")
    assert result.returncode == 0 and "ran," not in result.stderr
    assert {task["name"] for task in json.loads(result.stdout)["tasks"]} >= {"train:a"}
