"""Fixtures: fresh copies of the project in tmp_path (helpers live in helpers.py)."""

from __future__ import annotations

import compileall
from pathlib import Path

import pytest

from helpers import REPO, copy_project, tiny_project


@pytest.fixture(scope="session", autouse=True)
def compiled_package() -> None:
    """Compile the package once, as pip does for a regular install: an editable install is not compiled,
    and where PYTHONDONTWRITEBYTECODE is set every doit subprocess would compile it again."""
    compileall.compile_dir(REPO / "mlops", quiet=1)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the project with two tiny pipelines, a and b."""
    return tiny_project(tmp_path / "project")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A fresh copy of the project with the real demo pipelines, on a short series."""
    return copy_project(tmp_path / "demo")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the long tests first, so that parallel workers do not wait on one at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
