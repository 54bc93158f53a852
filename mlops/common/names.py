"""The shapes of names that become file names: pipelines, env options, dates."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from mlops.common.errors import ConfigError
from mlops.common.secrets import redact

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a pipeline name
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")  # an env option
DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z", re.ASCII)  # ASCII digits: a date names files
PLAIN_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\Z")  # a file name with no path and nothing a glob reads


def check_date(value: Any, source: str) -> str:
    """Return `value` if it is a YYYY-MM-DD date, else fail naming where it came from."""
    text = str(value)
    try:
        if DATE.match(text):
            dt.date.fromisoformat(text)
            return text
    except ValueError:
        pass
    raise ConfigError(f"{source}: '{value}' is not a date; write {source}=YYYY-MM-DD")


def one_line(text: str, limit: int | None = None) -> str:
    """Return `text` on one line, whitespace runs joined, cut to `limit` characters; secrets are masked first
    (a secret of several lines, or one across the cut, no longer matches once the text is joined or cut)."""
    joined = " ".join(redact(text).split())
    return joined if limit is None else joined[:limit]


def escaped(text: str) -> str:
    """Return `text` with unprintable characters escaped, so an error stays on one line whatever was typed."""
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
