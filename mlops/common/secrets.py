"""Secrets: which keys look secret, and the values held under them, which no message or record shows.

A value is secret when a key along its path looks secret (`SECRET_KEY`, listed in the README),
and so is the password in a URL (`https://user:password@host`) and any string that contains such a
value (`header: Bearer ${tracking.token}`): the
values are noted as the config and the command line are read, and `redact` takes them out of
any text.

Where a record must tell whether a secret changed, it keeps a keyed digest of it (HMAC-SHA256), the key kept
per project in `.mlops/secret.key` (0600, in no record, log or cache): a record that leaves the machine
reveals nothing a guess could be checked against. A step run in another process (a Dask worker) gets the
noted values and the key with its call (`Known`), so it masks, records and compares as doit's process does.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The one list of secret-looking key names (README, "Secrets"): any key along a path that matches.
SECRET_KEY = re.compile(r"pass(word|wd|phrase)|token|secret|credential|api_?key|private|cookie|authorization|"
                        r"(^|[_-])(auth|pat|pwd)([_-]|$)|(^|[_-])key$", re.IGNORECASE)
MASK = "********"
MIN_LENGTH = 4  # shorter values ("", "x", "1") are everywhere: masking them would hide nothing

KEY_FILE = "secret.key"

_values: set[str] = set()
_key: dict[str, Any] = {}  # "folder": where the project's key is kept; "key": the key, once read
_key_lock = threading.Lock()


@dataclass(frozen=True)
class Known:
    """What a process knows of secrets, as data another process can take: the noted values and the key."""

    values: frozenset[str]
    key: bytes


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
            # as written, as a message escapes it (Python's repr, JSON), and line by line (a message may show one
            # line of it)
            escapes = {text.encode("unicode_escape").decode("ascii"), repr(text)[1:-1], json.dumps(text)[1:-1],
                       json.dumps(text, ensure_ascii=False)[1:-1]}
            for form in {text, *escapes, *text.splitlines()}:
                if len(form.strip()) >= MIN_LENGTH:
                    _values.add(form)


def note_all(values: Iterable[Any]) -> None:
    """Note each of `values` as secret."""
    for value in values:
        note(value)


URL_PASSWORD = re.compile(r"://[^/\s@:]*:([^/\s@]+)@")  # scheme://user:password@host
URL_USER_PASSWORD = re.compile(r"(://[^/\s@:]*):[^/\s@]+@")
URL_TOKEN_USER = re.compile(r"(://)(?![^/\s@:]*:)[^/\s@]+@")  # scheme://token@host: a user name that is a token
URL_QUERY_VALUE = re.compile(r"([?&]([^=&#\s]+)=)[^&#\s]+")  # ?name=value: masked when the name looks secret


def note_url_passwords(value: Any) -> None:
    """Note the password of every URL with one (`https://user:password@host`) in a value, at any depth."""
    for leaf in leaves(value):
        if isinstance(leaf, str) and "@" in leaf:
            note_all(URL_PASSWORD.findall(leaf))


def holds_secret(text: str) -> bool:
    """Say whether a string contains a noted secret value."""
    return any(value in text for value in _values)


def shows_secret(value: Any) -> bool:
    """Say whether a plain value shows a noted secret: a string holding one, or a number that is one (a PIN
    under a secret-looking key, copied to a plain key by a reference, is a number)."""
    if isinstance(value, str):
        return holds_secret(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and str(value) in _values


def redact(text: str) -> str:
    """Return `text` with every noted secret value replaced by the mask, and so is the password of every URL in
    it (`scheme://user:password@host`; one too short to be noted, as a library's message may quote it), the
    user name of a URL without a password (`scheme://token@host`: tokens go there) and a URL's query value
    whose name looks secret (`?token=...`)."""
    for value in sorted(_values, key=len, reverse=True):
        text = text.replace(value, MASK)
    if "://" in text:
        text = URL_USER_PASSWORD.sub(rf"\1:{MASK}@", text)
        text = URL_TOKEN_USER.sub(rf"\1{MASK}@", text)
        text = URL_QUERY_VALUE.sub(lambda found: f"{found[1]}{MASK}" if secret_key(found[2]) else found[0], text)
    return text


def keep_key_in(folder: Path) -> None:
    """Keep the key for digests of secret values in `folder` (made on first use)."""
    if _key.get("folder") != folder:
        _key.clear()
        _key["folder"] = folder


def has_key() -> bool:
    """Say whether the project's key exists (a digest made with it may have been kept), without making it."""
    folder = _key.get("folder")
    return "key" in _key or (folder is not None and (folder / KEY_FILE).is_file())


def digest(blob: bytes) -> str:
    """Return the keyed digest of a secret value's bytes (the same for the same value, in one project)."""
    import hashlib  # here: loading OpenSSL costs every command a few ms, and most never make a digest
    import hmac

    return hmac.new(_project_key(), blob, hashlib.sha256).hexdigest()


def known() -> Known:
    """Return what this process knows of secrets, for a step run in another process."""
    return Known(frozenset(_values), _project_key())


def adopt(knowledge: Known) -> None:
    """In another process: mask and digest as the process that sent `knowledge` does."""
    _values.update(knowledge.values)
    _key.clear()
    _key["key"] = knowledge.key


def _project_key() -> bytes:
    with _key_lock:  # the threads of `doit -n N -P thread` (and of a Dask executor) ask at once
        if "key" not in _key:
            folder = _key.get("folder")
            _key["key"] = _read_key(folder / KEY_FILE) if folder is not None else os.urandom(32)
        return bytes(_key["key"])


def _read_key(path: Path) -> bytes:
    """Return the key kept at `path`, made first if there is none (0600; two runs making it at once agree)."""
    try:
        return bytes.fromhex(path.read_text())
    except FileNotFoundError:
        pass
    except ValueError:  # damaged: a new key (each secret read is then new: its step runs once more)
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(os.urandom(32).hex())
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(staged, path)  # the first of two runs making it wins; the other reads the first's
    except FileExistsError:
        pass
    finally:
        staged.unlink()
    return bytes.fromhex(path.read_text())
