"""The key=value words of one command line, turned once into Hydra override strings, and the checks each
override passes however its config is made: composed with Hydra, derived from the cache, or as one variant
of a sweep (whose values Hydra writes back escaped: `${x}` becomes `$\\{x\\}`). So the checks read the value
Hydra parses, never the text: what it unescapes is what OmegaConf would resolve."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops.common import secrets
from mlops.common.errors import ConfigError
from mlops.common.names import escaped
from mlops.common.secrets import secret_path

if TYPE_CHECKING:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

INTERPOLATION = "${"  # OmegaConf resolves every string holding it (and unescapes an escaped \${)
DIGITS = re.compile(r"[0-9]+")


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
            secrets.note_url_passwords(value)  # a URL's password too (a malformed word is echoed by its error)
        return cls(tuple(key if key.startswith("~") and value == "" else f"{key}={value}"
                         for key, value in words))

    def refuse_interpolations(self, allowed: Sequence[str]) -> None:
        """Fail on an override whose parsed value holds ${...} (a sweep's elements, lists and mappings too),
        unless its key is allowed. Hydra's grammar makes no '$' of other characters, so an override without
        one holds no interpolation: the usual command line is checked without importing Hydra."""
        for line in self.overrides:
            key = line.partition("=")[0].lstrip("+~")
            if key.startswith(("hydra.", "hydra/")) and key not in allowed:
                raise ConfigError(f"{escaped(key)}: Hydra's own settings are not set on the command line (a config "
                                  "folder named there could read any environment variable or file); set them in "
                                  f"conf/config.yaml, or list '{escaped(key)}' in [tool.mlops] allow_interpolation "
                                  "in pyproject.toml")
            if "$" in line:
                refuse_interpolation(parse_override(line), allowed)


def refuse_interpolation(override: Override, allowed: Sequence[str]) -> None:
    """Fail if a parsed override sets a string OmegaConf would interpolate, unless its key is allowed."""
    key = override.key_or_group
    found = next((text for text in parsed_strings(override.value()) if INTERPOLATION in text), None)
    if found is not None and key not in allowed:
        raise ConfigError(f"{override.get_key_element()}={escaped(found)}: ${{...}} on the command line is refused "
                          "(it could read any environment variable or file); put the reference in conf/, or list "
                          f"'{key}' in [tool.mlops] allow_interpolation in pyproject.toml")


def parsed_strings(value: Any) -> Iterator[str]:
    """Yield every string of a parsed override value: in lists and mappings (keys too), quoted, and each element
    of a sweep."""
    return (text for text, _ in parsed_parts(value))


def parsed_parts(value: Any) -> Iterator[tuple[str, bool]]:
    """Yield (text, whether it is a mapping's key) for every string of a parsed override value."""
    from hydra.core.override_parser.types import ChoiceSweep, Glob, QuotedString

    if isinstance(value, str):
        yield value, False
    elif isinstance(value, QuotedString):
        yield value.text, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key), True
            yield from parsed_parts(item)
    elif isinstance(value, list):
        for item in value:
            yield from parsed_parts(item)
    elif isinstance(value, ChoiceSweep):
        yield from parsed_parts(value.list)
    elif isinstance(value, Glob):
        yield from ((text, False) for text in (*value.include, *value.exclude))


def parse_override(line: str) -> Override:
    """Return Hydra's parse of one override string; ConfigError naming what is wrong with it."""
    from hydra.errors import OverrideParseException

    try:
        (override,) = _parser().parse_overrides([line])
    except OverrideParseException as error:
        reason = escaped(str(error).splitlines()[0])
        if not line.isascii():
            reason = "a value with characters beyond ASCII must be quoted: key='value'"
        raise ConfigError(f"override '{escaped(line)}' is not valid Hydra override syntax ({reason}); "
                          "write key=value, +key=value, ++key=value or ~key=") from None
    except ValueError as error:  # Hydra's int() of an unquoted number: Python reads a bounded count of digits
        key, _, value = line.partition("=")
        digits = max((len(run) for run in DIGITS.findall(value)), default=0)
        limit = sys.get_int_max_str_digits()
        if not limit or digits <= limit:
            raise ConfigError(f"override '{escaped(line)}' cannot be read ({escaped(str(error))})") from None
        raise ConfigError(f"{escaped(key)}: an integer of {digits} digits is more than Python reads ({limit} at "
                          f"most); quote it to keep it as text ({escaped(key)}='...'), or write fewer digits") from None
    return override


@functools.cache
def _parser() -> OverridesParser:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def secret_override(override: str) -> bool:
    """Say whether an override (key=value, +key=..., ~key=) sets a secret-looking key."""
    return secret_path(override.partition("=")[0].lstrip("+~").split("."))


def refuse_bare_deletions(words: Iterable[str]) -> None:
    """Fail on a `~key` word: doit reads a word without '=' as a task name."""
    for word in words:
        if word.startswith("~") and "=" not in word:
            raise ConfigError(f"{word}: doit reads a word without '=' as a task name; "
                              f"write {word}= to delete that key")
