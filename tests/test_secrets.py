"""Secret sentinel: a token read through ${oc.env:...} shows up in no output, log, state or cache."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import edit, ran, run_doit, tiny_project
from mlops.common import secrets
from mlops.common.canonical import canonical
from mlops.common.errors import ConfigError
from mlops.common.names import one_line
from mlops.config.words import CommandLine, parse_override
from mlops.plan.steps import StepCall
from mlops.run.failure import step_failed
from mlops.run.masking import masked_prints
from mlops.run.reads import stored_value

SENTINEL = "SENTINEL-1234"
FAILING = '''\
import json


def failing(inputs, params, outputs):
    raise RuntimeError("failed on purpose, token length " + str(len(params["api_token"])))


def leak(inputs, params, outputs):
    raise ConnectionError(f"401 for {params['header']} ?token={params['api_token']}")


def header(inputs, params, outputs):
    outputs["model"].write_text(str(len(params["header"])))


def whole(inputs, params, outputs):
    # reads everything at once, secrets nested in mappings and lists included
    outputs["model"].write_text(str(len(json.dumps(params.to_dict()))) + str(len(str(params["users"]))))
'''


@pytest.mark.long
def test_the_sentinel_appears_nowhere(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project")
    (project / "secret_steps.py").write_text(FAILING)
    config = project / "conf" / "config.yaml"
    config.write_text(config.read_text().replace('token: ${oc.env:MLOPS_TRACKING_TOKEN,""}',
                                                 "token: ${oc.env:MLOPS_TOKEN}"))
    pipeline = project / "conf" / "pipelines" / "a.yaml"
    pipeline.write_text(pipeline.read_text().replace('${oc.env:MLOPS_TEST_TOKEN,""}', "${tracking.token}"))
    (project / "conf" / "pipelines" / "broken.yaml").write_text(
        "prepare: {fn: tiny_steps.prepare, inputs: {raw: data/a.txt}, scale: 1}\n"
        "train: {fn: secret_steps.failing, api_token: '${tracking.token}'}\n")
    (project / "conf" / "pipelines" / "deep.yaml").write_text(
        "prepare: {fn: tiny_steps.prepare, inputs: {raw: data/b.txt}, scale: 1}\n"
        "train: {fn: secret_steps.whole, creds: {user: u, password: '${tracking.token}'},"
        " users: [{name: n, api_key: '${tracking.token}'}], auth: '${tracking.token}',"
        " db: {credential: '${tracking.token}', passwd: '${tracking.token}', private_key: '${tracking.token}'},"
        " github_pat: '${tracking.token}', session_cookie: '${tracking.token}'}\n")
    (project / "conf" / "pipelines" / "leaky.yaml").write_text(
        "prepare: {fn: tiny_steps.prepare, inputs: {raw: data/a.txt}, scale: 1}\n"
        "train: {fn: secret_steps.leak, api_token: '${tracking.token}', header: 'Bearer ${tracking.token}'}\n")
    (project / "conf" / "pipelines" / "copied.yaml").write_text(  # a secret inside a value under a plain key
        "prepare: {fn: tiny_steps.prepare, inputs: {raw: data/a.txt}, scale: 1}\n"
        "train: {fn: secret_steps.header, header: 'Bearer ${tracking.token}'}\n")
    commands = [
        [], [], ["--continue"], ["why"], ["list", "--all", "--status"], ["print_config"], ["info", "train:a"],
        ["pipelines.a.train.alpah=1"], ["user=${oc.env:MLOPS_TOKEN}"], ["predict:a", "--date", "x"],
        ["why", "env=prod"], ["env=prod", "train:a"], ["publish"], ["clean", "train:a"],
        # typed on the command line: never cached, never printed
        ["print_config", f"tracking.token={SENTINEL}"], ["list", f"+pipelines.a.train.api_key={SENTINEL}"],
        [f"+pipelines.deep.train.auth_header={SENTINEL}", "train:deep"], ["dumpdb"],
        # echoed by no error line
        ["print_config", "~tracking.token=x"], ["list", f"tracking.token={SENTINEL},x"],
        ["list", f"tracking.token='{SENTINEL}"], ["list", f"pipelines.a.train.password={SENTINEL}"],
        ["why", "train:leaky", "train:copied"], ["print_config"],
    ]
    printed = []
    for args in commands:
        result = run_doit(project, *args, env={"MLOPS_TOKEN": SENTINEL})
        printed.append(result.stdout + result.stderr)
    assert any("failed on purpose" in text for text in printed), "the failing step must have run"
    assert any("ConnectionError: 401 for Bearer ******** ?token=********" in text for text in printed)
    assert (project / "outputs" / "dev" / "copied" / "train" / "model.pkl").is_file()
    assert f"|{len(SENTINEL)}" in (project / "outputs" / "prod" / "a" / "train" / "model.pkl").read_text()
    assert (project / "outputs" / "dev" / "deep" / "train" / "model.pkl").is_file()
    for args, text in zip(commands, printed, strict=True):
        assert SENTINEL not in text, args
    for path in project.rglob("*"):
        if path.is_file():
            assert SENTINEL.encode() not in path.read_bytes(), path


PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n" \
      "-----END PRIVATE KEY-----"


@pytest.fixture
def noted() -> Iterator[None]:
    """Secrets noted by a test are forgotten after it (the set is the process's)."""
    kept, key = set(secrets._values), dict(secrets._key)
    yield
    secrets._values.clear()
    secrets._values.update(kept)
    secrets._key.clear()
    secrets._key.update(key)


def failure_of(message: str, params: dict[str, Any]) -> str:
    try:
        raise ValueError(message)
    except ValueError as error:
        failed = step_failed(StepCall("train:a", "steps.train", {}, params, {}), error, None)
    return f"{failed}\n{failed.trace}"


def test_a_secret_of_several_lines_is_masked_before_the_message_is_put_on_one_line(noted: None) -> None:
    secrets.note(PEM)
    shown = failure_of(f"cannot load the key {PEM}", {"private_key": PEM})
    for line in PEM.splitlines():
        assert line not in shown
    assert "cannot load the key ********" in shown


def test_a_secret_across_the_cut_of_a_long_message_shows_none_of_its_characters(noted: None) -> None:
    secret = "Zq7" + "x" * 30 + "Kp9"
    secrets.note(secret)
    message = "y" * 290 + secret  # the cut at 300 characters falls inside the secret
    shown = failure_of(message, {})
    assert "Zq7" not in shown and "yx" not in shown and "y********" in shown


def test_a_secret_is_masked_as_an_error_escapes_it_and_line_by_line(noted: None) -> None:
    secrets.note('ab\tcd"ef-secret')
    assert secrets.redact(r'value ab\tcd"ef-secret typed') == "value ******** typed"
    secrets.note("first line of it\nsecond line of it")
    assert secrets.redact("it said: second line of it") == "it said: ********"
    assert one_line("  a\tb  ", 2) == "a "


def test_a_secret_is_recorded_as_a_digest_keyed_per_project(tmp_path: Path, noted: None) -> None:
    secrets.keep_key_in(tmp_path / ".mlops")
    kept = stored_value(("api_token",), "1234")  # a PIN: an unkeyed digest is undone by trying 10,000 values
    key = tmp_path / ".mlops" / "secret.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_text()) == 64
    unkeyed = hashlib.sha256(b"mlops-secret:" + canonical("1234").encode()).hexdigest()
    assert unkeyed not in json.dumps(kept) and "1234" not in json.dumps(kept)
    assert stored_value(("api_token",), "1234") == kept != stored_value(("api_token",), "1235")
    secrets.keep_key_in(tmp_path / "elsewhere" / ".mlops")
    assert stored_value(("api_token",), "1234") != kept  # another project's key: nothing to compare across
    secrets.keep_key_in(tmp_path / ".mlops")
    assert stored_value(("api_token",), "1234") == kept  # the kept key, read again


def test_a_steps_own_prints_are_masked_line_by_line(noted: None, capsys: pytest.CaptureFixture[str]) -> None:
    secrets.note("print-secret-5521")
    with masked_prints():
        print("token:", "print-secret-", end="")  # a secret written in parts is still one line
        print("5521")
        sys.stderr.write("err print-secret-5521\n")
        print("unended print-secret-5521", end="")
    print("after print-secret-5521")  # the streams are the test's own again
    out, err = capsys.readouterr()
    assert out == "token: ********\nunended ********after print-secret-5521\n" and err == "err ********\n"


def test_a_url_password_in_a_word_the_grammar_refuses_is_not_echoed(noted: None) -> None:
    command_line = CommandLine.from_words([("tracking.uri", "http://ci:url-pw-0e5a@host/'x")])
    with pytest.raises(ConfigError) as refused:
        parse_override(command_line.overrides[0])
    assert "not valid Hydra override syntax" in str(refused.value) and "url-pw-0e5a" not in str(refused.value)


def test_threads_and_processes_making_the_key_at_once_agree_on_one(tmp_path: Path, noted: None) -> None:
    folder = tmp_path / ".mlops"
    barrier = threading.Barrier(8)
    found: list[str] = []

    def digest() -> None:
        barrier.wait()
        found.append(secrets.digest(b"value"))

    secrets.keep_key_in(folder)
    threads = [threading.Thread(target=digest) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    child = os.fork()  # another process, as another run, reads the key the threads made
    if child == 0:
        secrets.keep_key_in(tmp_path / "elsewhere")
        secrets.keep_key_in(folder)
        os._exit(0 if secrets.digest(b"value") == found[0] else 1)
    assert os.waitpid(child, 0)[1] == 0
    assert len(set(found)) == 1 and sorted(path.name for path in folder.iterdir()) == ["secret.key"]


LOOKUP_STEPS = '''\
def train(inputs, params, outputs):
    token = params["api_token"]
    found = [params["quotas"].get(token, 0), token in params["quotas"], params["pin_copy"], list(params["api_keys"])]
    outputs["model"].write_text(str(len(str(found))))
'''


def test_a_secret_used_as_a_key_a_number_or_a_path_reaches_no_record(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    (project / "lookup_steps.py").write_text(LOOKUP_STEPS)
    (project / "conf/pipelines/a.yaml").write_text(
        "prepare: {fn: tiny_steps.prepare, inputs: {raw: data/a.txt}, scale: 2}\n"
        "train: {fn: lookup_steps.train, api_token: '${oc.env:MLOPS_LOOKUP}', quotas: {default: 1},"
        " api_key: 987654321, pin_copy: '${.api_key}', api_keys: {LITERALKEYSECRET99: team1}}\n")
    env = {"MLOPS_LOOKUP": "LookupToken42"}
    assert ran(run_doit(project, "train:a", env=env)) == {"prepare:a", "train:a"}
    assert ran(run_doit(project, "train:a", env=env)) == set()  # a key kept as its digest is found again
    edit(project / "conf/pipelines/a.yaml", "LITERALKEYSECRET99", "NEWKEYSECRET55")
    why = run_doit(project, "why", "train:a", env=env)
    assert 'pipelines.a.train.api_keys (its keys): "********" -> "********"' in why.stdout, why.stdout
    printed = why.stdout + why.stderr + run_doit(project, "dumpdb", env=env).stdout
    for secret in ("LookupToken42", "987654321", "LITERALKEYSECRET99", "NEWKEYSECRET55"):
        assert secret not in printed
        assert not any(secret.encode() in path.read_bytes() for path in (project / "outputs").rglob("*")
                       if path.is_file()), secret


@pytest.mark.parametrize(("words", "said"), [
    (("print_config", "hydra.searchpath=[file:///tmp]"), "hydra.searchpath: Hydra's own settings are not set on"),
    (("train:a", "pipelines.a.train.db={password:Hunter2Secret},{password:Tiger9Secret}"),
     "pipelines.a.train.db: a value with a secret-looking key is not swept"),
    (("train:a", "pipelines.a.train.alpha=SweptToken42,1"),
     "pipelines.a.train.alpha: a swept value holds a secret value of the config"),
    (("train:a", "pipelines.a.prepare.inputs.raw=data/SweptToken42.txt"),
     "pipelines.a.prepare.inputs.raw (in conf/pipelines/a.yaml): the path holds a secret value"),
])
def test_a_secret_that_would_name_a_task_folder_or_path_is_refused(tmp_path: Path, words: tuple[str, ...],
                                                                   said: str) -> None:
    project = tiny_project(tmp_path / "project", pipelines=("a",))
    result = run_doit(project, *words, env={"MLOPS_TEST_TOKEN": "SweptToken42"})
    assert (result.returncode, result.stdout) == (1, "") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("mlops: error: ") and said in result.stderr, result.stderr
    assert not any(secret in result.stderr for secret in ("Hunter2", "Tiger9", "SweptToken42"))


def test_a_secret_is_masked_as_repr_and_json_escape_it(noted: None) -> None:
    secrets.note("it's\"Tok1234")
    secrets.note("pässwortTok99")
    error = KeyError("it's\"Tok1234")
    assert secrets.redact(str(error)) == "'********'"
    assert secrets.redact(json.dumps({"t": "pässwortTok99"})) == '{"t": "********"}'
