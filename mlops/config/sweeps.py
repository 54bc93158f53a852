"""Sweeps on the command line: Hydra's sweep grammar (`key=a,b,c`, `choice(...)`, `range(...)`) expanded
into one variant per combination of the swept values, each named for its values (`alpha=0.3`)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from mlops.common.errors import ConfigError
from mlops.common.names import escaped
from mlops.config.model import ENV_GROUP, secret_path
from mlops.config.words import CommandLine

MAX_VARIANTS = 1000
SWEEP_SIGN = re.compile(r"[,(]")  # every sweep (a,b  choice(...)  range(...)  interval(...)) holds one
UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")  # in a value, what a folder name should not hold


@dataclass(frozen=True)
class Variant:
    """One combination of swept values: its name (also its folder's) and the overrides that make it."""

    label: str
    overrides: tuple[str, ...]


def split_sweeps(command_line: CommandLine) -> tuple[CommandLine, list[Variant]]:
    """Return the command line without its sweeps, and one variant per combination of swept values
    (none when nothing is swept); ConfigError on a sweep that cannot be run value by value."""
    if not any(SWEEP_SIGN.search(override.partition("=")[2]) for override in command_line.overrides):
        return command_line, []  # no value with a comma or a call: nothing to sweep, and no Hydra to import
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    base: list[str] = []
    swept: list[tuple[str, str, list[str]]] = []  # (key as written, with + or ++; dotted key; values)
    for line in command_line.overrides:
        try:
            (override,) = parser.parse_overrides([line])
        except OverrideParseException:
            base.append(line)  # composing names what is wrong with it
            continue
        if not override.is_sweep_override():
            base.append(line)
            continue
        key = override.key_or_group
        if secret_path(key.split(".")):
            raise ConfigError(f"{key}: a secret-looking key is not swept (its values would name folders); "
                              "give it one value")
        if key == ENV_GROUP:
            raise ConfigError(f"{escaped(line)}: one env per command; run the sweep once for each env")
        if key == "date":
            raise ConfigError(f"{escaped(line)}: one date per command (a dated step keeps one output per date); "
                              "run once for each date, e.g. doit predict:pipeline_1 --date YYYY-MM-DD")
        if isinstance(override.value(), IntervalSweep):
            raise ConfigError(f"{escaped(line)}: interval(...) is a continuous range, and a sweep runs given "
                              "values; write them: key=a,b,c, choice(a,b) or range(start,stop,step)")
        values = list(dict.fromkeys(override.sweep_string_iterator()))
        if not values:
            raise ConfigError(f"{escaped(line)}: sweeps no value")
        swept.append((override.get_key_element(), key, values))
    if not swept:
        return command_line, []
    return CommandLine(tuple(base)), _variants(swept)


def _variants(swept: list[tuple[str, str, list[str]]]) -> list[Variant]:
    count = 1
    for _, _, values in swept:
        count *= len(values)
    if count > MAX_VARIANTS:
        raise ConfigError(f"the sweep makes {count} variants, more than {MAX_VARIANTS}; sweep fewer values")
    short = [key.rpartition(".")[2] for _, key, _ in swept]
    names = short if len(set(short)) == len(short) else [key for _, key, _ in swept]
    variants: list[Variant] = []
    seen: dict[str, tuple[str, ...]] = {}
    for combination in itertools.product(*(values for _, _, values in swept)):
        parts = zip(names, combination, strict=True)
        label = ",".join(f"{name}={UNSAFE.sub('_', value)[:60]}" for name, value in parts)
        overrides = tuple(f"{written}={value}" for (written, _, _), value in zip(swept, combination, strict=True))
        if label in seen:
            raise ConfigError(f"sweep values {seen[label]} and {combination} both make the folder name '{label}'; "
                              "sweep values that differ in letters, digits and _ . + -")
        seen[label] = combination
        variants.append(Variant(label, overrides))
    return variants
