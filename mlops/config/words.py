"""The key=value words of one command line, turned once into Hydra override strings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mlops.common import secrets
from mlops.common.errors import ConfigError
from mlops.common.secrets import secret_path


@dataclass(frozen=True)
class CommandLine:
    """What one command line asks of the config: its Hydra overrides, in order."""

    overrides: tuple[str, ...] = ()

    @classmethod
    def from_words(cls, words: Iterable[tuple[str, str]]) -> CommandLine:
        """Return the overrides of (key, value) words; `~key=` is how a deletion reaches us through doit."""
        words = list(words)
        for key, value in words:
            if secret_override(key):
                secrets.note(value)  # a secret typed on the command line: no message may echo it
        return cls(tuple(key if key.startswith("~") and value == "" else f"{key}={value}"
                         for key, value in words))

    def refuse_interpolations(self, allowed: Sequence[str]) -> None:
        """Fail on an override whose value holds ${...}, unless its key is allowed."""
        for override in self.overrides:
            key, _, value = override.partition("=")
            key = key.lstrip("+~")
            if "${" in value and key not in allowed:
                raise ConfigError(f"{override}: ${{...}} on the command line is refused (it could read any "
                                  "environment variable or file); put the reference in conf/, or list "
                                  f"'{key}' in [tool.mlops] allow_interpolation in pyproject.toml")


def secret_override(override: str) -> bool:
    """Say whether an override (key=value, +key=..., ~key=) sets a secret-looking key."""
    return secret_path(override.partition("=")[0].lstrip("+~").split("."))


def refuse_bare_deletions(words: Iterable[str]) -> None:
    """Fail on a `~key` word: doit reads a word without '=' as a task name."""
    for word in words:
        if word.startswith("~") and "=" not in word:
            raise ConfigError(f"{word}: doit reads a word without '=' as a task name; "
                              f"write {word}= to delete that key")
