"""Shared fixtures: a copy of the project in tmp_path, and a way to run the real doit command in it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("dodo.py", "conf", "pyproject.toml")


def copy_project(dest: Path, short_series: bool = True) -> Path:
    """Copy dodo.py, conf/ and pyproject.toml to `dest`; a short series keeps end-to-end runs quick."""
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            shutil.copy2(source, dest / name)
    if short_series:
        config = dest / "conf" / "config.yaml"
        text = config.read_text()
        assert "  days: 730\n" in text and "  holdout_days: 28\n" in text
        config.write_text(text.replace("  days: 730\n", "  days: 60\n").replace("  holdout_days: 28\n", "  holdout_days: 7\n"))
    return dest


def run_doit(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `doit ARGS` in `project` in a subprocess and return the finished process."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "doit", *args], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=300)


def task_marks(output: str) -> dict[str, str]:
    """Map each task name doit reported to its mark: '.' ran, '--' up to date."""
    return {match[2]: match[1] for match in re.finditer(r"^(\.|--) +(\S+)$", output, re.MULTILINE)}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the project, with a short demo series."""
    return copy_project(tmp_path / "project")
