"""A differential oracle: random edits and commands on a tiny project, and after each command,

- the steps it ran are those a cold run of the same command runs, on a copy of the project as it was before,
  with every cache removed (digests, config, versions, the no-op's fingerprint, bytecode);
- every output the command reached has the bytes a build from scratch makes (no stale output, whatever the
  records say);
- the same command again runs nothing (no step reruns for nothing).

Edits: an input, a step module, or a module only one pipeline imports, switched to another version in place,
in place with its mtime put back, or by a new file renamed over it, or touched (then `doit`); a pipeline file;
the value of an environment variable the config reads. Commands: full and narrowed runs, command-line values,
dates, sweeps; two at once (no step runs twice, and together they run what one run would); one killed in the
middle of a step.

A few commands run in the default suite; `pytest -m soak` runs many (MLOPS_ORACLE_COMMANDS, 200 by default).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

import oracle_project
from helpers import DOIT, environment, wait_for

# The commands, the plain `doit` as often as all the others together, as in everyday use.
OTHER_COMMANDS = [
    ("train:a",), ("evaluate:b",), ("predict:a", "--date", "2026-02-01"), ("predict:b", "--date", "2026-02-02"),
    ("date=2026-02-02",), ("train:a", "pipelines.a.train.alpha=0.3"), ("scale=3",), ("evaluate:a", "scale=3"),
    ("evaluate:a", "pipelines.a.train.alpha=0.1,0.3"), ("evaluate:a", "pipelines.a.train.alpha=0.3,0.5", "scale=2,3"),
]
COMMANDS = [*[()] * len(OTHER_COMMANDS), *OTHER_COMMANDS]
FILES = sorted(oracle_project.VERSIONS)
STEP_TASKS = [f"{kind}:{name}" for kind in ("prepare", "train", "evaluate", "predict") for name in ("a", "b")]
HOW = ["edit", "keep-mtime", "mv"]


class Oracle(RuleBasedStateMachine):
    """One tiny project, edited and run at random, each command judged against a cold run and a scratch build."""

    # what a build from scratch makes, by what it reads: shared by every example of a process
    scratch_made: ClassVar[dict[str, tuple[int, dict[str, bytes]]]] = {}
    judged: ClassVar[list[tuple[str, ...]]] = []  # every command judged so far, for the soak's count

    @initialize()
    def start(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mlops-oracle-"))
        self.project = oracle_project.make(self.folder / "project")
        self.versions = {name: 0 for name in oracle_project.VERSIONS}
        self.salt: str | None = None

    def teardown(self) -> None:
        if hasattr(self, "folder"):
            shutil.rmtree(self.folder, ignore_errors=True)

    @rule(name=st.sampled_from(FILES), pick=st.integers(0, 2), how=st.sampled_from(HOW))
    def switch(self, name: str, pick: int, how: str) -> None:
        """Switch a file to another of its versions, in one of the ways a file changes."""
        versions = oracle_project.VERSIONS[name]
        chosen = pick % len(versions)
        old, new = versions[self.versions[name]], versions[chosen]
        if how == "keep-mtime" and len(old.encode()) != len(new.encode()):
            how = "edit"  # a rewrite that keeps the mtime is the same-size trap; others are plain edits
        oracle_project.write_version(self.project, name, new, how)
        self.versions[name] = chosen

    @rule(name=st.sampled_from(FILES))
    def touch(self, name: str) -> None:
        """Touch a file (its mtime moves, its content stays), as a checkout or an editor's save does, then run
        `doit`: judged by the files' stats, every step stays up to date."""
        os.utime(self.project / name)
        self.command(())

    @rule(salt=st.sampled_from([None, "s1", "s2"]))
    def environment_value(self, salt: str | None) -> None:
        """Set, change or unset the environment variable pipeline b's config reads."""
        self.salt = salt

    @rule(words=st.sampled_from(COMMANDS))
    def command(self, words: tuple[str, ...]) -> None:
        """Run a command; its verdicts are a cold run's, its outputs a scratch build's; again, it runs nothing."""
        self.judged.append(words)
        cold = oracle_project.without_caches(self.project, self.folder / "cold")
        main = self.doit(self.project, words)
        expected = self.doit(cold, words)
        assert (main.returncode, ran(main)) == (expected.returncode, ran(expected)), explain(words, main, expected)
        self.check_outputs(words, main)
        again = self.doit(self.project, words)
        assert again.returncode == main.returncode and ran(again) == set(), explain(words, again, main)

    @rule(words=st.sampled_from(COMMANDS))
    def concurrent(self, words: tuple[str, ...]) -> None:
        """Run a command twice at once: no step runs in both, and together they run what one cold run runs."""
        self.judged.append(words)
        cold = oracle_project.without_caches(self.project, self.folder / "cold")
        log = self.folder / "concurrent.log"
        log.unlink(missing_ok=True)
        first, second = (self.start_doit(self.project, words, log) for _ in range(2))
        results = [finished(first), finished(second)]
        calls = log.read_text().split() if log.exists() else []
        assert len(calls) == len(set(calls)), f"doit {' '.join(words)} twice at once: a step ran twice: {sorted(calls)}"
        expected = self.doit(cold, words)
        assert [result.returncode for result in results] == [expected.returncode] * 2, explain(words, *results)
        made = [ran(result) for result in results]
        assert not made[0] & made[1] and made[0] | made[1] == ran(expected), explain(words, *results, expected)
        self.check_outputs(words, results[0])

    @rule(words=st.sampled_from(COMMANDS), task=st.sampled_from(STEP_TASKS))
    def killed(self, words: tuple[str, ...], task: str) -> None:
        """Kill a command in the middle of a step (if it reaches that step; else it simply ends)."""
        log = self.folder / "killed.log"
        hang = Path(f"{log}.hang")
        hang.unlink(missing_ok=True)
        process = self.start_doit(self.project, words, log, {"MLOPS_ORACLE_HANG": task})
        wait_for(lambda: hang.exists() or process.poll() is not None)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)

    def check_outputs(self, words: tuple[str, ...], main: subprocess.CompletedProcess[str]) -> None:
        """Every output a build from scratch makes for this command has its bytes in the project."""
        code, made = self.from_scratch(words)
        assert main.returncode == code, explain(words, main)
        present = oracle_project.outputs(self.project)
        stale = sorted(path for path, content in made.items() if present.get(path) != content)
        assert not stale, f"doit {' '.join(words)}: outputs not as a build from scratch makes them: {stale}"

    def from_scratch(self, words: tuple[str, ...]) -> tuple[int, dict[str, bytes]]:
        """Return the exit code and the outputs of the command on a copy of the project's sources alone."""
        copy = oracle_project.sources(self.project, self.folder / "scratch")
        digest = hashlib.sha256(repr((words, self.salt)).encode())
        for path in sorted(path for path in copy.rglob("*") if path.is_file()):
            digest.update(str(path.relative_to(copy)).encode() + b"\0" + path.read_bytes())
        key = digest.hexdigest()
        if key not in self.scratch_made:
            result = self.doit(copy, words)
            self.scratch_made[key] = (result.returncode, oracle_project.outputs(copy))
        return self.scratch_made[key]

    def doit(self, project: Path, words: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        process = self.start_doit(project, words, self.folder / "calls.log")
        return finished(process)

    def start_doit(self, project: Path, words: tuple[str, ...], log: Path,
                   extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
        env = environment({"MLOPS_ORACLE_LOG": str(log), **(extra or {})})
        env.pop("MLOPS_ORACLE_SALT", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # Python keeps bytecode caches, as by default
        if self.salt is not None:
            env["MLOPS_ORACLE_SALT"] = self.salt
        return subprocess.Popen([DOIT, *words], cwd=project, env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def ran(result: subprocess.CompletedProcess[str]) -> set[str]:
    """Return the steps a run executed (`.`; not `~`, a result taken from another run, nor `--`)."""
    lines = [line for line in result.stdout.splitlines() if line.startswith(".  ")]
    return {line[3:].split(" ")[0] for line in lines}


def explain(words: tuple[str, ...], *results: subprocess.CompletedProcess[str]) -> str:
    shown = [f"--- exit {result.returncode}\n{result.stdout}{result.stderr}" for result in results]
    return f"doit {' '.join(words)}:\n" + "\n".join(shown)


def check(commands: int) -> int:
    """Run the oracle on fresh projects until it has judged at least `commands` commands; return how many."""
    Oracle.judged.clear()
    while len(Oracle.judged) < commands:
        run_state_machine_as_test(Oracle, settings=settings(
            max_examples=max(1, min(20, commands // 10)), stateful_step_count=min(40, 2 * commands), deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck)))
    return len(Oracle.judged)


def test_random_edits_and_commands_agree_with_a_cold_run() -> None:
    assert check(commands=5) >= 5


@pytest.mark.soak
def test_a_long_soak_of_random_edits_and_commands_agrees_with_a_cold_run() -> None:
    judged = check(commands=int(os.environ.get("MLOPS_ORACLE_COMMANDS", "200")))
    print(f"oracle: {judged} commands judged against a cold run, none disagreed")
