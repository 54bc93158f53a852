"""Task locks: one byte-range lock per task on one file per env, held by a process, given up when it dies."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from mlops.state.locks import TaskLock

FORK = multiprocessing.get_context("fork")


def hold(folder: Path, task: str, held, done) -> None:
    lock = TaskLock(folder, task)
    lock.acquire()
    held.set()
    done.wait(30)
    lock.release()


def holder(folder: Path, task: str):
    held, done = FORK.Event(), FORK.Event()
    process = FORK.Process(target=hold, args=(folder, task, held, done))
    process.start()
    assert held.wait(30)
    return process, done


def test_a_held_task_makes_another_process_wait_and_names_it(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    process, done = holder(tmp_path, "train:a")
    other = TaskLock(tmp_path, "train:b")
    assert other.acquire() is False  # another task: no wait
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(TaskLock(tmp_path, "train:a").acquire()))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # still waiting for the holder
    done.set()
    waiter.join(30)
    process.join(30)
    assert waited == [True]
    assert f"train:a is running in process {process.pid}; waiting for it" in capsys.readouterr().err
    other.release()


def test_a_killed_holder_leaves_no_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    process, _ = holder(tmp_path, "train:a")
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    lock = TaskLock(tmp_path, "train:a")
    assert lock.acquire() is False
    assert capsys.readouterr().err == ""
    lock.release()


def test_releasing_one_task_keeps_the_others_of_this_process(tmp_path: Path) -> None:
    first, second = TaskLock(tmp_path, "train:a"), TaskLock(tmp_path, "train:b")
    first.acquire()
    second.acquire()
    second.release()
    second.release()  # a second release does nothing
    held, done = FORK.Event(), FORK.Event()
    process = FORK.Process(target=hold, args=(tmp_path, "train:a", held, done))
    process.start()
    assert not held.wait(0.3)  # train:a is still ours
    first.release()
    assert held.wait(30)
    done.set()
    process.join(30)


def test_tasks_of_a_large_project_get_distinct_bytes(tmp_path: Path) -> None:
    names = [f"{step}:p_{i}" for step in ("prepare", "train", "evaluate", "predict") for i in range(10_000)]
    assert len({TaskLock(tmp_path, name).offset for name in names}) == len(names)
    assert all(0 <= TaskLock(tmp_path, name).offset < 1 << 62 for name in names[:100])
