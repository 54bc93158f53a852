"""What a module's code does, read from its syntax tree: comments, layout and docstrings do not count."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import xxhash


@dataclass(frozen=True)
class Part:
    """A top-level function or class, or the module's other statements: its digest and what it uses."""

    digest: str
    names: frozenset[str]  # the names it refers to (other top-level parts among them)
    imports: tuple[str, ...]  # the modules it imports, absolute (a `from m import x` also names m.x)


@dataclass(frozen=True)
class ModuleCode:
    """A module's code as parts: `body` is everything but its top-level functions and classes."""

    body: Part
    defs: dict[str, Part]

    def used_by(self, function: str) -> list[Part]:
        """Return the parts a call of `function` may run: the body, the function and what they name."""
        found: dict[str, Part] = {}
        waiting = [*self.body.names, function]
        while waiting:
            name = waiting.pop()
            if name in self.defs and name not in found:
                found[name] = self.defs[name]
                waiting.extend(found[name].names)
        return [self.body, *(found[name] for name in sorted(found))]

    def whole(self) -> list[Part]:
        """Return every part of the module (what importing it may run)."""
        return [self.body, *(self.defs[name] for name in sorted(self.defs))]


def read_module(source: bytes, filename: str, package: str) -> ModuleCode:
    """Parse a module's source into parts (SyntaxError if it does not parse)."""
    tree = ast.parse(source, filename)
    _drop_docstring(tree)
    defs = {node.name: node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    named = {id(node) for node in defs.values()}
    rest = [node for node in tree.body if id(node) not in named]  # a definition named twice: the first is here
    return ModuleCode(_part(rest, package), {name: _part([node], package) for name, node in defs.items()})


def digest_of(parts: Iterable[Part]) -> str:
    """Return one digest of some parts' code."""
    return xxhash.xxh3_128_hexdigest("\n".join(part.digest for part in parts).encode())


def _part(nodes: list[ast.stmt], package: str) -> Part:
    for node in nodes:
        for inner in ast.walk(node):
            _drop_docstring(inner)
    dumped = "\n".join(ast.dump(node, include_attributes=False) for node in nodes)
    walked = [inner for node in nodes for inner in ast.walk(node)]
    names = frozenset(inner.id for inner in walked if isinstance(inner, ast.Name))
    return Part(xxhash.xxh3_128_hexdigest(dumped.encode()), names, tuple(dict.fromkeys(_imports(walked, package))))


def _drop_docstring(node: ast.AST) -> None:
    """Remove a module's, class's or function's docstring: it documents the code, it does not run."""
    if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:] or [ast.Pass()]


def _imports(nodes: Iterable[ast.AST], package: str) -> Iterator[str]:
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                try:
                    module = importlib.util.resolve_name("." * node.level + module, package)
                except ImportError:
                    continue  # a relative import beyond the top package fails when it runs
            if module == "__future__":
                continue
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
