"""Sweeps on the command line: Hydra's sweep grammar (`key=a,b,c`, `choice(...)`, `range(...)`) expanded
into one variant per combination of the swept values, each named for its values (`alpha=0.3`).

A name is one to one: each swept key is named by the shortest end of its dotted path no other swept key
ends with (`alpha`, or `a.train.alpha` beside `b.train.alpha`), and each value as written when it is a
short plain word, else by a digest (`note=a_b~3f2a9c1d0e4b`), so that two values never share a name."""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops.common.errors import ConfigError
from mlops.common.names import escaped
from mlops.common.secrets import URL_PASSWORD, holds_secret
from mlops.config.model import ENV_GROUP, secret_path
from mlops.config.words import CommandLine, parse_override, parsed_parts, parsed_strings

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override, RangeSweep

MAX_VARIANTS = 1000
SWEEP_SIGN = re.compile(r"[,(]")  # every sweep (a,b  choice(...)  range(...)  interval(...)) holds one
PLAIN_VALUE = re.compile(r"[A-Za-z0-9_.+-]{1,40}\Z", re.ASCII)  # a value shown as it is in a folder name
UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]", re.ASCII)


@dataclass(frozen=True)
class Variant:
    """One combination of swept values: its name and the overrides that make it; `values` are the (key's name,
    value's name) of each swept key, in the command line's order."""

    label: str
    overrides: tuple[str, ...]
    values: tuple[tuple[str, str], ...] = ()


def split_sweeps(command_line: CommandLine) -> tuple[CommandLine, list[Variant]]:
    """Return the command line without its sweeps, and one variant per combination of swept values
    (none when nothing is swept); ConfigError on a sweep that cannot be run value by value."""
    if not any(SWEEP_SIGN.search(override.partition("=")[2]) for override in command_line.overrides):
        return command_line, []  # no value with a comma or a call: nothing to sweep, and no Hydra to import
    base: list[str] = []
    swept: list[tuple[str, str, list[str]]] = []  # (key as written, with + or ++; dotted key; values)
    for line in command_line.overrides:
        override = parse_override(line)
        if override.is_sweep_override():
            swept.append((override.get_key_element(), override.key_or_group, swept_values(override, line)))
        else:
            base.append(line)
    if not swept:
        return command_line, []
    return CommandLine(tuple(base)), _variants(swept)


def swept_values(override: Override, line: str) -> list[str]:
    """Return the values a sweep lists, each as the value of an override; ConfigError on a sweep that cannot be
    run value by value, or whose values would show in names what no name may show."""
    refuse_sweep(override, line)
    values = list(dict.fromkeys(override.sweep_string_iterator()))
    if not values:
        raise ConfigError(f"{escaped(line)}: sweeps no value")
    return values


def refuse_sweep(override: Override, line: str) -> None:
    """Fail on a sweep of a key that takes one value per command, or of values no name may hold, or that Hydra
    cannot list (the values of glob(...) are a config group's options; interval(...) has none)."""
    from hydra.core.override_parser.types import Glob, IntervalSweep, RangeSweep

    key, value = override.key_or_group, override.value()
    if secret_path(key.split(".")):
        raise ConfigError(f"{key}: a secret-looking key is not swept (its values would name folders); "
                          "give it one value")
    if any(is_key and secret_path([text]) for text, is_key in parsed_parts(value)):
        raise ConfigError(f"{key}: a value with a secret-looking key is not swept (its values would name tasks, "
                          "folders and tracking runs); give it one value")
    if any(URL_PASSWORD.search(text) for text in parsed_strings(value)):
        raise ConfigError(f"{key}: a URL with a password is not swept (scheme://user:password@host: its values "
                          "would name tasks, folders and tracking runs); give it one value")
    if key == ENV_GROUP:
        raise ConfigError(f"{escaped(line)}: one env per command; run the sweep once for each env")
    if key == "date":
        raise ConfigError(f"{escaped(line)}: one date per command (a dated step keeps one output per date); "
                          "run once for each date, e.g. doit predict:pipeline_1 --date YYYY-MM-DD")
    given = "a sweep runs given values; write them: key=a,b,c, choice(a,b) or range(start,stop,step)"
    if isinstance(value, IntervalSweep):
        raise ConfigError(f"{escaped(line)}: interval(...) is a continuous range, and {given}")
    if isinstance(value, Glob):
        raise ConfigError(f"{escaped(line)}: glob(...) picks options of a config group by name, and {given}")
    if isinstance(value, RangeSweep):
        refuse_range(value, line)


def refuse_range(sweep: RangeSweep, line: str) -> None:
    """Fail on a range(...) that cannot be listed: a step of 0, or more values than a sweep may make (counted,
    not listed: range(0,1e12) would take all memory, as would shuffle(range(...)))."""
    from decimal import Decimal  # here: only a range needs it

    start, stop, step = (Decimal(number) for number in (sweep.start or 0, sweep.stop or 0, sweep.step))
    if not all(number.is_finite() for number in (start, stop, step)):
        raise ConfigError(f"{escaped(line)}: range(...) takes finite numbers; write range(start,stop,step)")
    if not step:
        raise ConfigError(f"{escaped(line)}: range(...) with step 0 never ends; give a step that leads from start "
                          "to stop: range(start,stop,step)")
    if (stop - start) / step > MAX_VARIANTS:
        raise ConfigError(f"{escaped(line)}: sweeps more than {MAX_VARIANTS} values; sweep fewer")


def _variants(swept: list[tuple[str, str, list[str]]]) -> list[Variant]:
    count = 1
    for _, _, values in swept:
        count *= len(values)
    if count > MAX_VARIANTS:
        raise ConfigError(f"the sweep makes {count} variants, more than {MAX_VARIANTS}; sweep fewer values")
    names = key_names([key for _, key, _ in swept])
    variants: list[Variant] = []
    for combination in itertools.product(*(values for _, _, values in swept)):
        named = tuple((name, value_name(value)) for name, value in zip(names, combination, strict=True))
        overrides = tuple(f"{written}={value}" for (written, _, _), value in zip(swept, combination, strict=True))
        variants.append(Variant(label(named), overrides, named))
    return variants


def label(values: tuple[tuple[str, str], ...]) -> str:
    """Return the name of some swept values: `alpha=0.3,days=60`."""
    return ",".join(f"{name}={value}" for name, value in values)


def key_names(keys: list[str]) -> list[str]:
    """Return each dotted key's shortest end that no other key ends with."""
    parts = [key.split(".") for key in keys]
    names = []
    for mine in parts:
        size = 1
        while size < len(mine) and any(other[-size:] == mine[-size:] for other in parts if other is not mine):
            size += 1
        names.append(".".join(mine[-size:]))
    return names


def value_name(value: str) -> str:
    """Return a swept value's name in labels and folders: itself when short and plain, else a readable part and
    a digest of it (`~` tells the two apart, so no two values share a name)."""
    if PLAIN_VALUE.match(value):
        return value
    return f"{UNSAFE.sub('_', value)[:16]}~{hashlib.sha256(value.encode()).hexdigest()[:12]}"


def refuse_secret_values(variants: list[Variant]) -> None:
    """Fail on a swept value that holds a secret value the config knows (call once the config is read): it would
    name tasks, folders and tracking runs."""
    for variant in variants:
        for override in variant.overrides:
            key, _, value = override.partition("=")
            if holds_secret(value):
                raise ConfigError(f"{key.lstrip('+')}: a swept value holds a secret value of the config (its values "
                                  "would name tasks, folders and tracking runs); give it one value")
