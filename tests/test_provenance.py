"""provenance.json beside each step's outputs: what made them, agreeing with doit's state."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

from helpers import doit, edit, run_doit
from mlops.state.digests import file_digest


def provenance(project: Path, step: str, pipeline: str = "a") -> dict:
    return json.loads((project / f"outputs/dev/{pipeline}/{step}/provenance.json").read_text())


def git(project: Path, *words: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *words], cwd=project,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_each_step_says_what_made_its_outputs_as_doit_state_records_it(project: Path) -> None:
    git(project, "init", "-q")
    (project / ".gitignore").write_text("outputs/\n.mlops/\n")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "first")
    assert doit(project, "train:a", MLOPS_TEST_TOKEN="SENTINEL-77")
    made = provenance(project, "train")
    assert (made["task"], made["fn"], made["date"], made["executor"]) == ("train:a", "tiny_steps.train", None, "local")
    assert made["params"] == {"alpha": 0.5, "api_token": "********"}
    assert made["project"] == {"version": "0.1.0", "git": {"commit": git(project, "rev-parse", "HEAD"),
                                                           "dirty": False}}
    model = project / "outputs/dev/a/train/model.pkl"
    features = project / "outputs/dev/a/prepare/features.csv"
    assert made["outputs"] == {"model": {"path": "outputs/dev/a/train/model.pkl", "digest": file_digest(model)}}
    assert made["inputs"] == {"features": {"path": "outputs/dev/a/prepare/features.csv",
                                           "digest": file_digest(features)}}
    started, ended = datetime.fromisoformat(made["started"]), datetime.fromisoformat(made["ended"])
    assert started <= ended and str(started.tzinfo) == "UTC" and made["duration_s"] >= 0
    # It agrees with doit's state: the reads, the files and the code the check compares.
    record = json.loads(run_doit(project, "dumpdb").stdout)["train:a"]["_values_:"]["made"][""]
    assert made["code"] == record["code"] and "tiny_steps.py" in made["code"]
    assert record["files"] == {"outputs/dev/a/prepare/features.csv": made["inputs"]["features"]["digest"]}
    assert record["outputs"] == {"outputs/dev/a/train/model.pkl": made["outputs"]["model"]["digest"]}
    assert "SENTINEL-77" not in json.dumps(made)
    # An up-to-date step leaves it as it is; a rerun rewrites it, and a changed tree says "dirty".
    before = (project / "outputs/dev/a/train/provenance.json").stat().st_mtime_ns
    assert doit(project, "train:a", MLOPS_TEST_TOKEN="SENTINEL-77") == set()
    assert (project / "outputs/dev/a/train/provenance.json").stat().st_mtime_ns == before
    edit(project / "tiny_steps.py", "alpha={params", "alpha=={params")
    assert "train:a" in doit(project, "train:a", MLOPS_TEST_TOKEN="SENTINEL-77")
    assert provenance(project, "train")["project"]["git"]["dirty"] is True


def test_a_dated_step_keeps_one_record_per_date_and_clean_removes_them(ran_project: Path) -> None:
    project = ran_project
    first = provenance(project, "predict")["2026-01-01"]
    assert doit(project, "predict:a", "--date", "2026-02-02") == {"predict:a"}
    records = provenance(project, "predict")
    assert sorted(records) == ["2026-01-01", "2026-02-02"]
    assert records["2026-02-02"]["outputs"]["forecast"]["path"] == "outputs/dev/a/predict/forecast_2026-02-02.csv"
    assert records["2026-02-02"]["params"] == {"date": "2026-02-02"}
    assert records["2026-01-01"] == first  # the other date's record kept as it was
    assert run_doit(project, "clean", "predict:a").returncode == 0
    assert not list((project / "outputs/dev/a/predict").iterdir())
