"""Running one step: outputs appear at their final path only when the step succeeded; failures are StepErrors."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from mlops.common.errors import StepError, StepFailed
from mlops.plan import StepCall
from mlops.run.executor import LocalExecutor
from mlops.run.runner import OUTPUT_DIGESTS, load_function, run_step
from mlops.state.digests import file_digest


@pytest.fixture
def steps_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("fake_steps")

    def good(inputs, params, outputs):
        outputs["out"].write_text(f"{params['value']} from {inputs['src'].read_text()}")

    def crash(inputs, params, outputs):
        outputs["out"].write_text("half")
        raise RuntimeError("model blew up")

    def forgetful(inputs, params, outputs):
        """Write nothing."""

    def mutating(inputs, params, outputs):
        params["value"] = "changed"
        outputs["out"].write_text("ok")

    for function in (good, crash, forgetful, mutating):
        setattr(module, function.__name__, function)
    monkeypatch.setitem(sys.modules, "fake_steps", module)
    return module


def call(tmp_path: Path, fn: str) -> StepCall:
    (tmp_path / "src.txt").write_text("input")
    return StepCall("train:p", f"fake_steps.{fn}", {"src": str(tmp_path / "src.txt")}, {"value": 3},
                    {"out": str(tmp_path / "out" / "result.txt")})


def test_success_publishes_the_output_and_returns_what_it_read(tmp_path: Path, steps_module) -> None:
    made = LocalExecutor().run(call(tmp_path, "good"))
    out = tmp_path / "out" / "result.txt"
    info = out.stat()  # each output as published: its digest taken once, before the rename, which keeps the rest
    moved = [info.st_ino, info.st_size, info.st_mtime_ns]
    assert made == {"values": {'["value"]': 3}, "keys": {}, "runner": {"values": {}, "keys": {}},
                    OUTPUT_DIGESTS: {str(out): {"moved": moved, "digest": file_digest(out)}}}
    assert out.read_text() == "3 from input"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["result.txt"]


def test_a_crash_keeps_the_previous_output_and_leaves_no_partial_file(tmp_path: Path, steps_module) -> None:
    run_step(call(tmp_path, "good"))
    with pytest.raises(StepFailed, match=r"^fake_steps\.crash raised RuntimeError: model blew up") as failed:
        run_step(call(tmp_path, "crash"))
    # The step's own frames, from its function down: not the framework's around it.
    assert failed.value.trace.splitlines()[1].endswith("in crash")
    assert failed.value.trace.endswith("RuntimeError: model blew up") and "mlops/run/" not in failed.value.trace
    assert (tmp_path / "out" / "result.txt").read_text() == "3 from input"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["result.txt"]


def test_a_step_that_skips_an_output_fails_and_publishes_nothing(tmp_path: Path, steps_module) -> None:
    with pytest.raises(StepError, match=r"^fake_steps.forgetful did not write outputs\['out'\]"):
        run_step(call(tmp_path, "forgetful"))
    assert list((tmp_path / "out").iterdir()) == []


def test_a_step_cannot_change_the_parameters_it_was_handed(tmp_path: Path, steps_module) -> None:
    step = call(tmp_path, "mutating")
    with pytest.raises(StepFailed, match="TypeError: 'TrackedParams' object does not support item assignment"):
        run_step(step)
    assert step.params == {"value": 3}


def test_an_unknown_function_is_a_step_error(tmp_path: Path, steps_module) -> None:
    with pytest.raises(StepError, match=r"^cannot load step function 'fake_steps\.missing'"):
        run_step(call(tmp_path, "missing"))
    with pytest.raises(StepError, match=r"^'json\.decoder' is not a function"):
        load_function("json.decoder")
