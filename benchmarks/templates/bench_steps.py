"""Benchmark step functions: trivial file work, shared verbatim by the mlops and bare doit projects."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HEAD = 1 << 20  # read at most 1 MiB of a raw input, so a huge one never sits in memory whole


def prepare(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Copy the head of the raw input into the features, plus a line."""
    with open(inputs["raw"], "rb") as raw:
        data = raw.read(HEAD)
    _write(outputs["features"], data, "prepared")


def train(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Copy the features into the model, plus a line with alpha, so alpha changes the model."""
    _write(outputs["model"], Path(inputs["features"]).read_bytes(), f"alpha={params['alpha']}")


def evaluate(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Write the size and CRC-32 of features and model as JSON."""
    data = Path(inputs["features"]).read_bytes() + Path(inputs["model"]).read_bytes()
    Path(outputs["metrics"]).write_text(json.dumps({"bytes": len(data), "crc32": zlib.crc32(data)}))


def predict(inputs: Mapping[str, Path], params: Mapping[str, Any], outputs: Mapping[str, Path]) -> None:
    """Copy the model into the forecast, plus a line with the date."""
    _write(outputs["forecast"], Path(inputs["model"]).read_bytes(), f"date={params['date']}")


def _write(path: Path, data: bytes, line: str) -> None:
    """Write `data` followed by one text line."""
    Path(path).write_bytes(data + line.encode() + b"\n")
