"""Secret sentinel, scaling with the features: a distinct random secret planted through each channel, every
command and executor run on it, then every byte the project could leak searched for each secret (as written,
base64, hex; line by line; any part of a long one). One failure lists every leak, so one run tells everything."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from secrets import choice
from string import ascii_letters, digits

import pytest
from test_dask import Cluster

from helpers import all_tasks, ran, run_doit, tiny_project

pytestmark = pytest.mark.long

CHANNELS = {
    "a": "an environment variable under api_token (${oc.env:...})",
    "b1": "a plain key embedding a secret (header: Bearer ${.bearer_token})",
    "b2": "a plain key embedding an environment variable (db_url: postgres://svc:${oc.env:...}@host/db)",
    "c": "a secret-looking key set on the command line (pipelines.a.train.cli_token=...)",
    "c2": "a secret-looking key changed on the command line for why and graph (old -> new)",
    "d1": "a URL password in a config value (endpoint: https://svc:PW@host/v1)",
    "d2": "a URL password typed on the command line (pipelines.a.train.mirror=..., tracking.uri=...)",
    "e": "a multi-line PEM block under private_key (also in an exception)",
    "f1": "a secret inside a list (users: [{api_key: ...}])",
    "f2": "a secret read through to_dict() (creds: {password: ...})",
    "g": "a long secret (320 characters) in an exception message",
    "h": "URL passwords in a sweep of a plain key (ftp://:PW@host; to be refused)",
}
PIPELINE = """\
prepare: {{fn: tiny_steps.prepare, inputs: {{raw: data/a.txt}}, scale: 2}}
train:
  fn: sentinel_steps.train
  alpha: 0.5
  explode: false
  api_token: ${{oc.env:MLOPS_TEST_TOKEN}}
  bearer_token: ${{oc.env:SENTINEL_BEARER}}
  header: Bearer ${{.bearer_token}}
  db_url: postgres://svc:${{oc.env:SENTINEL_DB_PW}}@host/db
  cli_token: ''
  endpoint: {d1}
  mirror: ''
  private_key: |
    {e}
  users: [{{name: svc, api_key: {f1}}}]
  creds: {{user: svc, password: {f2}}}
  long_secret: {g}
evaluate: {{fn: tiny_steps.evaluate}}
predict: {{fn: tiny_steps.predict}}
"""
STEPS = '''\
import json


def train(inputs, params, outputs):
    if params["explode"]:
        raise RuntimeError(f"failed with {params['private_key']} and {params['long_secret']} "
                           f"for {params['header']} at {params['db_url']}")
    read = [params[key] for key in ("api_token", "header", "db_url", "cli_token", "endpoint", "mirror",
                                    "private_key", "long_secret", "users")]
    read.append(params["creds"].to_dict())
    outputs["model"].write_text(f"{inputs['features'].read_text()}|{len(json.dumps(read))}")
'''


def word(length: int) -> str:
    """A random secret of letters and digits, a letter first: never a number to YAML or Hydra."""
    return choice(ascii_letters) + "".join(choice(ascii_letters + digits) for _ in range(length - 1))


def sentinels() -> dict[str, str]:
    """One distinct random secret per channel."""
    found = {channel: word(22) for channel in CHANNELS}
    body = [base64.urlsafe_b64encode(os.urandom(24)).decode() for _ in range(3)]
    found["e"] = "\n".join(["-----BEGIN PRIVATE KEY-----", *body, "-----END PRIVATE KEY-----"])
    found["g"] = word(320)
    return found


def carriers(secret: dict[str, str]) -> dict[str, list[str]]:
    """The values that carry a secret inside them, as the config holds them (a plain digest of one is a leak)."""
    return {"b1": [f"Bearer {secret['b1']}"], "b2": [f"postgres://svc:{secret['b2']}@host/db"],
            "d1": [f"https://svc:{secret['d1']}@api.example.com/v1"], "d2": [f"https://bob:{secret['d2']}@m.io/x"],
            "h": [f"ftp://:{secret['h']}@{host}/x" for host in ("a.io", "b.io")]}


def plant(root: Path, secret: dict[str, str]) -> dict[str, str]:
    """Write the sentinel pipeline `a` beside tiny `b`; return what the environment carries for every command."""
    pem = secret["e"].replace("\n", "\n    ")
    (root / "conf/pipelines/a.yaml").write_text(PIPELINE.format(d1=carriers(secret)["d1"][0], e=pem,
                                                                f1=secret["f1"], f2=secret["f2"], g=secret["g"]))
    (root / "sentinel_steps.py").write_text(STEPS)
    return {"MLOPS_TEST_TOKEN": secret["a"], "SENTINEL_BEARER": secret["b1"], "SENTINEL_DB_PW": secret["b2"],
            "MLFLOW_DISABLE_TELEMETRY": "true"}


def commands(secret: dict[str, str], address: str) -> Iterator[tuple[str, list[str]]]:
    """Yield each command as (label, its words): every command and executor the project has."""
    carried = carriers(secret)
    words = [f"pipelines.a.train.cli_token={secret['c']}", f"pipelines.a.train.mirror={carried['d2'][0]}"]
    changed = [f"pipelines.a.train.cli_token={secret['c2']}", words[1]]
    on_dask = ["executor=dask", f"dask.address={address}"]
    yield "doit", words
    yield "doit (again: a no-op)", words
    yield "doit why (a secret changed)", ["why", *changed]
    yield "doit graph (a secret changed)", ["graph", *changed]
    for suffix in (".mmd", ".dot", *((".svg", ".png") if shutil.which("dot") else ())):
        yield f"doit graph --out dag{suffix}", ["graph", "--out", f"dag{suffix}", *changed]
    yield "doit dumpdb", ["dumpdb"]
    yield "doit print_config", ["print_config", *words, f"tracking.uri=http://bob:{secret['d2']}@127.0.0.1:9"]
    yield "doit list --all --status", ["list", "--all", "--status", *words]
    yield "doit info train:a", ["info", "train:a", *words]
    yield "doit -n 2 -a", ["-n", "2", "-a", *words]
    yield "doit -a executor=dask", ["-a", *on_dask, *words]
    yield "doit (failing)", [*words, "pipelines.a.train.explode=true"]
    yield "doit (failing, executor=dask)", [*words, "pipelines.a.train.explode=true", *on_dask]
    yield "doit why (after the failure)", ["why", *words]
    sweep = f"pipelines.a.train.endpoint={','.join(carried['h'])}"
    yield "doit (a sweep of URL passwords)", [*words, sweep]
    yield "doit sweep (a sweep of URL passwords)", ["sweep", sweep]


def forms(text: str) -> Iterator[tuple[str, bytes]]:
    """Yield a secret's encodings: as written, hex, and base64 at each of the three byte alignments."""
    raw = text.encode()
    yield from (("raw", raw), ("hex", raw.hex().encode()), ("hex", raw.hex().upper().encode()))
    for shift in range(3):  # the characters that hold only the secret's bits, wherever it starts
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            yield "base64", encode(b"\0" * shift + raw)[-(-8 * shift // 6):8 * (shift + len(raw)) // 6]


def needles(secret: str, carried: list[str]) -> Iterator[tuple[str, bytes]]:
    """Yield (how, bytes) to look for: the secret and each line of a multi-line one in each form, their first
    and last 7 characters (a cut message, a name made of a value), any part of a long one, a plain digest."""
    lines = secret.splitlines()
    pieces = [("", secret)] + [(f"line {n} ", line) for n, line in enumerate(lines, 1)
                               if len(lines) > 1 and not line.startswith("-----")]
    for label, piece in pieces:
        yield from ((f"{label}{form}", blob) for form, blob in forms(piece))
        if "\n" not in piece:
            yield from ((f"{label}first 7 characters", piece[:7].encode()),
                        (f"{label}last 7 characters", piece[-7:].encode()))
    if len(secret) > 300:
        yield from (("a 20-character part", secret[start:start + 20].encode())
                    for start in range(0, len(secret) - 19, 20))
    for text in {secret, *carried, *(value.replace(":", "\\:") for value in carried)}:  # as Hydra writes one
        # hashed without a key, a guess could be checked against it
        for algorithm in ("md5", "sha1", "sha256"):
            yield f"plain {algorithm}", hashlib.new(algorithm, text.encode()).hexdigest()[:12].encode()


def haystacks(project: Path, planted: dict[Path, bytes], cluster: Path,
              said: list[tuple[str, subprocess.CompletedProcess[str]]]) -> Iterator[tuple[str, bytes]]:
    """Yield (where, bytes): every command's stdout and stderr, every path name and file the commands left
    in the project (not the key file, nor a file still as the test wrote it), the Dask processes' files."""
    for label, result in said:
        yield f"`{label}` stdout", result.stdout.encode(errors="surrogateescape")
        yield f"`{label}` stderr", result.stderr.encode(errors="surrogateescape")
    for root, kind in ((project, ""), (cluster, "Dask's ")):
        for path in sorted(root.rglob("*")):
            name = path.relative_to(root)
            yield f"{kind}the name of {name}", path.name.encode()  # each name once, not again in those below it
            if path.is_file() and not path.is_symlink() and name != Path(".mlops/secret.key"):
                blob = path.read_bytes()
                if planted.get(path) != blob:
                    yield f"{kind}file {name}", blob


def leaks(secret: dict[str, str], places: list[tuple[str, bytes]]) -> list[str]:
    """Return one line per (channel, place) where any form of the channel's secret was found."""
    found = []
    carried = carriers(secret)
    for channel, value in secret.items():
        searched = list(needles(value, carried.get(channel, [])))
        for where, blob in places:
            how = sorted({label for label, needle in searched if needle in blob})
            if how:
                found.append(f"channel {channel} ({CHANNELS[channel]}) leaked into {where}, as: {', '.join(how)}")
    return found


def expectations(project: Path, said: dict[str, subprocess.CompletedProcess[str]]) -> Iterator[str]:
    """Yield what the commands did not do that the search needs them to have done, or did wrong (a sweep of
    secrets must be refused)."""
    if said["doit"].returncode != 0 or ran(said["doit"]) != all_tasks():
        yield f"the first doit did not run every step: {said['doit'].stderr[-300:]}"
    if ran(said["doit (again: a no-op)"]):
        yield f"the second doit was not a no-op: it ran {sorted(ran(said['doit (again: a no-op)']))}"
    for label in ("doit -n 2 -a", "doit -a executor=dask"):
        if said[label].returncode != 0 or "train:a" not in ran(said[label]):
            yield f"`{label}` did not run train:a: {said[label].stderr[-300:]}"
    for label in ("doit (failing)", "doit (failing, executor=dask)"):
        if said[label].returncode == 0 or "RuntimeError" not in said[label].stdout + said[label].stderr:
            yield f"`{label}` did not fail with the step's RuntimeError"
    provenance = project / "outputs/dev/a/train/provenance.json"
    record = provenance.read_text() if provenance.is_file() else ""
    masked = ("api_token", "header", "db_url", "cli_token", "endpoint", "mirror", "private_key", "long_secret")
    if '"executor": "dask"' not in record or not all(f'"{key}": "********"' in record for key in masked):
        yield "train:a's provenance is not of the Dask run, or does not show each secret the step read, masked"
    if not (project / "outputs/dev/mlflow.db").is_file() or not (project / "outputs/dev/mlartifacts").is_dir():
        yield "experiment tracking made no embedded store"
    for label in ("doit (a sweep of URL passwords)", "doit sweep (a sweep of URL passwords)"):
        lines = (said[label].stdout + said[label].stderr).strip().splitlines()
        if said[label].returncode == 0 or len(lines) != 1 or "Traceback" in lines[0]:
            yield f"`{label}` was not refused with one clean line (exit {said[label].returncode}, {len(lines)} lines)"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A Dask scheduler and one worker on 127.0.0.1, their logs and scratch space in tmp_path/cluster/ (searched
    too)."""
    folder = tmp_path / "cluster"
    folder.mkdir()
    running = Cluster(folder)
    try:
        running.worker(prefix=("env", f"DASK_TEMPORARY_DIRECTORY={folder / 'scratch'}"))
        yield running
    finally:
        running.stop()


def test_no_channel_leaks_a_secret_through_any_command_file_or_log(tmp_path: Path, cluster: Cluster) -> None:
    project = tiny_project(tmp_path / "project", tracking=True)
    secret = sentinels()
    env = plant(project, secret)
    planted = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()}
    said: list[tuple[str, subprocess.CompletedProcess[str]]] = []
    for label, words in commands(secret, cluster.address):
        if "dask" in label:
            cluster.wait_for_workers(1)  # the scheduler's own answer: its worker has registered
        said.append((label, run_doit(project, *words, env=env)))
    problems = [f"expected: {line}" for line in expectations(project, dict(said))]
    problems += leaks(secret, list(haystacks(project, planted, cluster.folder, said)))
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
