"""The up-to-date rule, in one place: is what a step made last what it would make now?

doit's up-to-date check, `doit why` and a run that finds another run's result all ask `reasons`.
A record of what made an output holds the config values the step read, the digests of the
input files it consumed, the state of the code it ran (`code`) and the stamps of the outputs it wrote.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from mlops.common import identity
from mlops.plan.steps import MISSING, Step
from mlops.run.code import PYTHON, code_state
from mlops.run.reads import MAPPING, PRESENT, changes, shown
from mlops.state.digests import DigestCache, stamped_digest

CODE_SUFFIXES = frozenset({".py", ".so", ".pyd"})


def reasons(step: Step, date: str | None, made: dict[str, Any] | None, digests: DigestCache,
            files: bool = True) -> list[str]:
    """Return one line per reason `made` is not what the step would make now; none means up to date.

    `files=False` leaves the comparison of input digests to doit's own file check.
    """
    if made is None:
        return ["no record of a successful run"] if date is None else [f"nothing made for {date} yet"]
    found = config_reasons(step, made.get("reads"), date)
    since = f" since {date} was made" if date else ""
    if files:
        now = consumed(step, digests)
        for path, digest in sorted(made.get("files", {}).items()):
            if now.get(path) != digest:
                found.append(f"input changed{since}: {path}")
    found += code_reasons(made.get("code"), code_state(step.section["fn"], step.env_dir), since)
    return found + edited_outputs(made.get("outputs", {}), digests)


def code_reasons(made: dict[str, str] | None, now: dict[str, str], since: str = "") -> list[str]:
    """Describe how the code state a step ran differs from its code now (project files, versions)."""
    if made is None:
        return [f"no record of the code it ran{since} (made by an older mlops)"]
    if made == now:
        return []
    found = []
    versions = PYTHON in made and PYTHON in now  # turning version tracking on or off reruns nothing
    for key in sorted(made.keys() | now.keys()):
        old, new = made.get(key), now.get(key)
        code = os.path.splitext(key)[1] in CODE_SUFFIXES  # a project file, else Python or a distribution
        if old == new or (not versions and not code):
            continue
        if not code:
            found.append(f"{key}: {old or '(not imported)'} -> {new or '(not imported)'}{since}")
        elif new is None:
            gone = "missing" if not os.path.exists(key) else "no longer used"
            found.append(f"code {gone}{since}: {key}")
        else:
            found.append(f"code changed{since}: {key}" if old else f"code newly used{since}: {key}")
    return found


def valid_record(made: Any) -> bool:
    """Say whether a saved record has the shape this code writes (any other counts as no record)."""
    if not isinstance(made, dict):
        return False
    reads, outputs = made.get("reads", {}), made.get("outputs", {})
    if not (isinstance(reads, dict) and isinstance(reads.get("values", {}), dict)
            and isinstance(reads.get("keys", {}), dict) and isinstance(made.get("files", {}), dict)
            and isinstance(made.get("code", {}), dict) and isinstance(outputs, dict)):
        return False
    return None not in map(stamped_digest, outputs.values())  # asked of every record on every check: no generators


def record_key(date: str | None) -> str:
    """Return the key of a run's record among a step's records: its date, or '' for an undated step."""
    return date or ""


def made_records(values: Any) -> dict[str, dict[str, Any]]:
    """Return the records of what made a step's outputs, by `record_key`, from the values saved for its task
    (only records of the shape this code writes: any other counts as none)."""
    records = values.get("made") if isinstance(values, dict) else None
    if not isinstance(records, dict):
        return {}
    return {key: made for key, made in records.items() if valid_record(made)}


def made_for(values: Any, date: str | None) -> dict[str, Any] | None:
    """Return the record of what made the output for `date` (None: undated), None if there is none."""
    made = made_records(values).get(record_key(date))
    return dict(made) if made is not None else None


def consumed(step: Step, digests: DigestCache) -> dict[str, str]:
    """Return the digest of each input file (empty for a missing file)."""
    found = {}
    for path in step.inputs.values():
        try:
            found[path] = digests.digest(path)
        except OSError:  # missing, or not reachable (a file where its folder goes, a link loop)
            found[path] = ""
    return found


def made_record(reads: dict[str, Any], files: dict[str, str], code: dict[str, str], outputs: Iterable[str],
                digests: DigestCache, published: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return the record of a step run: what it read, the files it consumed, its code, the digest of each output
    (`published`: as the runner hashed them before moving them into place), and an id of this making: a run
    that remakes a step exactly as it was still leaves a new record, which another run waiting on the step's
    lock finds (and takes) instead of making the step once more."""
    return {"reads": reads, "files": files, "code": code, "outputs": output_digests(outputs, digests, published),
            "id": os.urandom(16).hex()}


def config_reasons(step: Step, reads: dict[str, Any] | None, date: str | None) -> list[str]:
    """Describe each recorded read whose value changed, secrets masked; no record means never run.

    Each read is compared with what it read from: the step's reads with the params it would be
    handed now, the runner's (fn, inputs) with the section.
    """
    if reads is None:
        return ["no record of a successful run"]
    found = changes(reads.get("runner") or {}, step.runner_reads()) + changes(reads, step.params(date))
    prefix = f"pipelines.{step.pipeline}.{step.kind.name}"
    return [f"config {prefix}.{key}: {_shown(old)} -> {_shown(new)}" for key, old, new in found]


def output_digests(paths: Iterable[str], digests: DigestCache,
                   published: dict[str, dict[str, Any]] | None = None) -> dict[str, str]:
    """Return the digest of each output as written, to notice later edits by hand. An output the runner hashed
    before its rename into place (`published`: {"moved": (inode, size, mtime_ns), "digest"}) keeps that
    digest while it is still that file; the rename changed its ctime, so the cache hashes it once more when
    next asked (the racy rule, `common.identity`)."""
    found = {}
    for path in paths:
        info = os.stat(path)
        moved = (published or {}).get(path)
        if moved is not None and moved["moved"] == identity.of(info)[1:4]:
            digests.remember(path, info, moved["digest"])
            found[path] = str(moved["digest"])
        else:
            found[path] = digests.digest(path, info)
    return found


def edited_outputs(stamps: dict[str, Any], digests: DigestCache) -> list[str]:
    """Return a reason for each output whose content is no longer what the step wrote."""
    found = []
    for path, stamp in stamps.items():
        try:
            info = os.stat(path)
        except OSError:
            continue  # a missing output (or one that cannot be reached) is doit's missing-target reason
        if digests.digest(path, info) != stamped_digest(stamp):
            found.append(f"output changed since the step made it: {path}")
    return found


def _shown(value: Any) -> str:
    if value == MISSING:
        return "(absent)"
    if value == MAPPING:
        return "(a mapping)"
    if value == PRESENT:
        return "(present)"
    return json.dumps(shown(value))
