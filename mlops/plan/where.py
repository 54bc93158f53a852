"""A config key and the file it comes from, for error messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Where:
    """A config key and the file it comes from."""

    key: str
    file: Path | None = None
    root: Path | None = None

    def __truediv__(self, part: str) -> Where:
        return Where(f"{self.key}.{part}", self.file, self.root)

    def __str__(self) -> str:
        if self.file is None or self.root is None:
            return self.key
        return f"{self.key} (in {self.file.relative_to(self.root)})"


class LazyWhere:
    """A Where whose key is joined only if an error message needs it (planning makes thousands)."""

    def __init__(self, base: Where, parts: tuple[str, ...]) -> None:
        self.base, self.parts = base, parts

    def __truediv__(self, part: str) -> LazyWhere:
        return LazyWhere(self.base, (*self.parts, part))

    def __str__(self) -> str:
        where = self.base
        for part in self.parts:
            where = where / part
        return str(where)
