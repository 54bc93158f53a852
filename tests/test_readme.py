"""The README's commands print what the README says, and CI runs the README's test command."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, run_doit, wait_for_loggers

README = (REPO / "README.md").read_text()


def console_sessions() -> list[tuple[str, list[str]]]:
    """Return every `$ command` in the README's console blocks with the lines it prints."""
    sessions: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", README, re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                sessions.append((line[2:], []))
            else:
                sessions[-1][1].append(line.rstrip())
    return sessions


def quick_start() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


@pytest.mark.long
def test_every_console_command_prints_what_the_readme_shows(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dodo.py", "conf", "pyproject.toml", "mlops"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, project / name)
    sessions = console_sessions()
    assert len(sessions) >= 15
    for command, expected in sessions:
        words = shlex.split(command)
        assert words[0] == "doit"
        # The copy's own mlops, as in a clone installed with `pip install -e .`: its code is the project's.
        env = {"USER": "ada", "MLOPS_TRACKING_TOKEN": "", "PYTHONPATH": str(project)}
        result = run_doit(project, *words[1:], env=env)
        wait_for_loggers(project)  # the next command starts with what this one made logged
        printed = [line.rstrip() for line in (result.stdout + result.stderr).splitlines()]
        assert seconds_hidden(printed) == seconds_hidden(expected), f"$ {command}"
        # A command fails when it says so: one error line first, or a report that counts a failed step.
        refused = bool(printed) and printed[0].startswith("mlops: error:")
        failed = any(re.match(r"mlops: \d+ ran, .*, [1-9]\d* failed", line) for line in printed)
        assert (result.returncode == 0) == (not refused and not failed), command
    check_provenance_example(json.loads((project / "outputs/dev/pipeline_1/train/provenance.json").read_text()))
    # What the README reads back with MLflow's client is what the runs above logged.
    section = README.split("## Experiment tracking", 1)[1]
    script, shown = re.search(r"```python\n(.*?)```\n+```text\n(.*?)```", section, re.DOTALL).groups()
    read = subprocess.run([sys.executable, "-c", script], cwd=project, capture_output=True, text=True, timeout=120)
    assert read.returncode == 0, read.stderr
    assert read.stdout == shown
    # The picture GitHub renders is what `doit graph` printed above.
    graph = next(printed for command, printed in sessions if command.startswith("doit graph"))
    assert re.search(r"```mermaid\n(.*?)```", README, re.DOTALL).group(1).splitlines() == graph


def seconds_hidden(lines: list[str]) -> list[str]:
    """Return the lines with the durations of the run report hidden: they differ from run to run."""
    return [re.sub(r"  \d+\.\d s$", "  #.# s", line) for line in lines]


def check_provenance_example(made: dict) -> None:
    """The README's provenance.json is the demo's: the same fields, the same values where a run cannot vary."""
    shown = json.loads(re.search(r"```json\n(.*?)```", README, re.DOTALL).group(1))
    assert sorted(shown) == sorted(made)
    for key in ("task", "fn", "executor", "date", "params"):
        assert shown[key] == made[key], key
    assert sorted(shown["code"]) == sorted(made["code"])
    for side in ("inputs", "outputs"):
        assert {name: item["path"] for name, item in shown[side].items()} == \
            {name: item["path"] for name, item in made[side].items()}
    assert made["project"]["version"] == shown["project"]["version"]


def test_quick_start_is_two_commands_and_ci_runs_both() -> None:
    commands = quick_start()
    assert commands == ["pip install -e '.[tracking]' && doit", "pip install -e '.[dev]' && python -m pytest"]
    script = (REPO / ".ci" / "run").read_text()
    extraction = script[script.index("quick_start() {"):script.index("\n}\n", script.index("quick_start() {")) + 3]
    found = subprocess.run(["bash", "-c", f"{extraction}\nquick_start"], cwd=REPO, capture_output=True, text=True,
                           check=True)
    assert found.stdout.splitlines() == commands
    assert 'in_fresh_venv "$main_command"' in script and 'in_fresh_venv "$test_command' in script
