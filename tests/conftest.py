"""Fixtures: fresh copies of the project in tmp_path (helpers live in helpers.py)."""

from __future__ import annotations

import compileall
import shutil
import time
from pathlib import Path

import pytest

from helpers import REPO, all_tasks, copy_project, ran, run_doit, tiny_project
from mlops.common import identity


@pytest.fixture(scope="session", autouse=True)
def compiled_package() -> None:
    """Compile the package once, as pip does for a regular install: an editable install is not compiled,
    and where PYTHONDONTWRITEBYTECODE is set every doit subprocess would compile it again."""
    compileall.compile_dir(REPO / "mlops", quiet=1)


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The racy rule's clock reads a minute late: the files a test has just written count as settled, so that
    a cache keeps what it learns of them at once (the rule itself: tests/test_identity.py)."""
    monkeypatch.setattr(identity, "now", lambda: time.time_ns() + 60_000_000_000)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the project with two tiny pipelines, a and b."""
    return tiny_project(tmp_path / "project")


@pytest.fixture(scope="session")
def run_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny project after one full `doit`, made once per test process (copied, never used in place)."""
    root = tiny_project(tmp_path_factory.mktemp("template") / "project")
    first = run_doit(root)
    assert first.returncode == 0, first.stderr
    assert ran(first) == all_tasks()
    return root


@pytest.fixture
def ran_project(run_once: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny project in which every step has run once: all up to date."""
    return Path(shutil.copytree(run_once, tmp_path / "project", symlinks=True))


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A fresh copy of the project with the real demo pipelines, on a short series."""
    return copy_project(tmp_path / "demo")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the long tests first, so that parallel workers do not wait on one at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
