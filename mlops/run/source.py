"""What a module's code does, read from its syntax tree: comments, layout and docstrings do not count."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import xxhash

STAR = "*"  # an import's name for `from m import *`: every public name of m


@dataclass(frozen=True)
class Part:
    """A top-level function or class, or the module's other statements: its digest and what it uses."""

    digest: str
    names: frozenset[str]  # the names it refers to (other top-level parts among them)
    # The modules it imports, absolute, each with the name it takes from it (None: the module itself).
    imports: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class ModuleCode:
    """A module's code as parts: `body` is everything but its top-level functions and classes."""

    body: Part
    defs: dict[str, Part]

    def used_by(self, names: Iterable[str]) -> list[Part]:
        """Return the parts that using `names` of the module may run: the body, those names and what they name,
        and a module-level `__getattr__` (it answers for names the module does not bind)."""
        found: dict[str, Part] = {}
        waiting = [*self.body.names, *names, "__getattr__"]
        while waiting:
            name = waiting.pop()
            if name in self.defs and name not in found:
                found[name] = self.defs[name]
                waiting.extend(found[name].names)
        return [self.body, *(found[name] for name in sorted(found))]

    def whole(self) -> list[Part]:
        """Return every part of the module."""
        return [self.body, *(self.defs[name] for name in sorted(self.defs))]


def read_module(source: bytes, filename: str, package: str) -> ModuleCode:
    """Parse a module's source into parts (SyntaxError if it does not parse, RecursionError if too deep)."""
    tree = ast.parse(source, filename)
    _drop_docstring(tree)
    aliases = _module_aliases(tree, package)
    # A decorated definition is part of the body: its decorators run on import, and may put it anywhere (a
    # registry the step reads by a computed name).
    defs = {node.name: node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.decorator_list}
    named = {id(node) for node in defs.values()}
    # A definition named twice: the first is part of the body. A `__main__` block never runs on import.
    rest = [node for node in tree.body if id(node) not in named and not _main_block(node)]
    return ModuleCode(_part(rest, package, aliases),
                      {name: _part([node], package, aliases) for name, node in defs.items()})


def digest_of(parts: Iterable[Part]) -> str:
    """Return one digest of some parts' code."""
    return xxhash.xxh3_128_hexdigest("\n".join(part.digest for part in parts).encode())


def _part(nodes: list[ast.stmt], package: str, aliases: dict[str, str]) -> Part:
    for node in nodes:
        for inner in ast.walk(node):
            _drop_docstring(inner)
    dumped = "\n".join(ast.dump(node, include_attributes=False) for node in nodes)
    walked = [inner for node in nodes for inner in ast.walk(node)]
    names = frozenset(inner.id for inner in walked if isinstance(inner, ast.Name))
    imports = [*_imports(walked, package), *_attribute_modules(walked, aliases)]
    return Part(xxhash.xxh3_128_hexdigest(dumped.encode()), names, tuple(dict.fromkeys(imports)))


def _main_block(node: ast.stmt) -> bool:
    """Say whether `node` is `if __name__ == "__main__":`."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _drop_docstring(node: ast.AST) -> None:
    """Remove a module's, class's or function's docstring: it documents the code, it does not run."""
    if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        node.body = body[1:] or [ast.Pass()]


def _absolute(module: str, level: int, package: str) -> str | None:
    if not level:
        return module
    try:
        return importlib.util.resolve_name("." * level + module, package)
    except ImportError:
        return None  # a relative import beyond the top package fails when it runs


def _imports(nodes: Iterable[ast.AST], package: str) -> Iterator[tuple[str, str | None]]:
    """Yield (module, name taken from it) for each import; `from m import x` may also mean module m.x."""
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module or "", node.level, package)
            if module is None or module == "__future__":
                continue
            for alias in node.names:
                yield module, alias.name
                if alias.name != STAR:
                    yield f"{module}.{alias.name}", None


def _module_aliases(tree: ast.Module, package: str) -> dict[str, str]:
    """Return the names the module's imports bind to modules (`import a.b` binds a; `import a.b as c`, c)."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.partition(".")[0]
                aliases[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module or "", node.level, package)
            for alias in node.names if module else []:
                aliases.setdefault(alias.asname or alias.name, f"{module}.{alias.name}")
    return aliases


def _attribute_modules(nodes: Iterable[ast.AST], aliases: dict[str, str]) -> Iterator[tuple[str, str | None]]:
    """Yield the modules an attribute chain on an imported name may reach: `pkg.sub.f()` may run pkg.sub."""
    for node in nodes:
        if not isinstance(node, ast.Attribute) or not isinstance(node.value, (ast.Name, ast.Attribute)):
            continue
        chain = []
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in aliases and len(chain) > 1:
            yield ".".join([aliases[value.id], *reversed(chain[1:])]), None
