"""The shape of the package: small modules and functions, documented, library internals in their adapters."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from helpers import REPO

MODULES = sorted((REPO / "mlops").rglob("*.py"))
ADAPTERS = {"mlops/doit_adapter/internals.py", "mlops/config/hydra_adapter.py"}
# A private name of doit, Hydra or OmegaConf: `_CMDLINE_VARS`, `hydra._internal`, `._apply_overrides_to_config`...
PRIVATE = re.compile(r"\b(?:doit|hydra|omegaconf)[\w.]*\._\w|_CMDLINE_VARS|Globals\.|_apply_overrides_to_config|"
                     r"\"_values_:\"|\"deps:\"|\.reasons\b")


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_modules_are_small_and_documented(path: Path) -> None:
    text = path.read_text()
    tree = ast.parse(text)
    assert len(text.splitlines()) <= 250, f"{relative(path)} has more than 250 lines"
    assert ast.get_docstring(tree), f"{relative(path)} has no module docstring"
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= 40, f"{relative(path)}: {node.name} has {length} lines"
    for node in _public_functions(tree):
        assert ast.get_docstring(node) or _overrides_a_library(node), f"{relative(path)}: {node.name} has no docstring"


def _public_functions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Return the module's public functions and public methods of its classes (not nested helpers)."""
    bodies = [tree.body, *[node.body for node in tree.body if isinstance(node, ast.ClassDef)]]
    return [node for body in bodies for node in body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_")]


def _overrides_a_library(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    # doit's backend interface (get, set, in_...) and dunder methods document themselves upstream.
    return node.name in {"get", "set", "in_", "remove", "remove_all", "dump"}


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_library_internals_are_read_only_in_their_adapter(path: Path) -> None:
    if relative(path) in ADAPTERS:
        return
    found = [line.strip() for line in path.read_text().splitlines() if PRIVATE.search(line)]
    assert not found, f"{relative(path)} reads a library internal; move it to one of {sorted(ADAPTERS)}: {found}"


def test_the_private_internals_scan_finds_what_the_adapters_read() -> None:
    for adapter in ADAPTERS:
        assert PRIVATE.search((REPO / adapter).read_text()), adapter
