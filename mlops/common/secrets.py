"""Secrets: which keys look secret, and the values held under them, which no message or record shows.

A value is secret when a key along its path looks secret (`SECRET_KEY`, listed in the README),
and so is the password in a URL (`https://user:password@host`) and any string that contains such a
value (`header: Bearer ${tracking.token}`): the
values are noted as the config and the command line are read, and `redact` takes them out of
any text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

# The one list of secret-looking key names (README, "Secrets"): any key along a path that matches.
SECRET_KEY = re.compile(r"pass(word|wd|phrase)|token|secret|credential|api_?key|private|cookie|authorization|"
                        r"(^|[_-])(auth|pat|pwd)([_-]|$)|(^|[_-])key$", re.IGNORECASE)
MASK = "********"
MIN_LENGTH = 4  # shorter values ("", "x", "1") are everywhere: masking them would hide nothing

_values: set[str] = set()


@functools.cache
def secret_key(name: str) -> bool:
    """Say whether a key name looks secret."""
    return bool(SECRET_KEY.search(name))


def secret_path(parts: Sequence[Any]) -> bool:
    """Say whether any key along a key path looks secret."""
    return any(secret_key(str(part)) for part in parts)


def leaves(value: Any) -> Iterator[Any]:
    """Yield the values inside mappings and lists, at any depth (a plain value is its own leaf)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def note(value: Any) -> None:
    """Note the strings in a secret value (at any depth), so that no text shows them."""
    for leaf in leaves(value):
        if leaf is not None and not isinstance(leaf, bool):
            text = str(leaf)
            # as written, as a message escapes it, and line by line (a message may show one line of it)
            for form in {text, text.encode("unicode_escape").decode("ascii"), *text.splitlines()}:
                if len(form.strip()) >= MIN_LENGTH:
                    _values.add(form)


def note_all(values: Iterable[Any]) -> None:
    """Note each of `values` as secret."""
    for value in values:
        note(value)


URL_PASSWORD = re.compile(r"://[^/\s@:]*:([^/\s@]+)@")  # scheme://user:password@host


def note_url_passwords(value: Any) -> None:
    """Note the password of every URL with one (`https://user:password@host`) in a value, at any depth."""
    for leaf in leaves(value):
        if isinstance(leaf, str) and "@" in leaf:
            note_all(URL_PASSWORD.findall(leaf))


def holds_secret(text: str) -> bool:
    """Say whether a string contains a noted secret value."""
    return any(value in text for value in _values)


def redact(text: str) -> str:
    """Return `text` with every noted secret value replaced by the mask."""
    for value in sorted(_values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text
