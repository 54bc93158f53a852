"""Steps on a Dask cluster: the executor seam's second engine. doit keeps the DAG and the state; each step
that runs is one Dask task, run by `run_in_project` in a worker process.

`dask.address` names a running scheduler; without one, a local cluster (`dask.workers` processes, one
thread each) is started in this process when the first step runs, and stopped when the command ends.
Before the first step, every worker is asked whether it sees this project's outputs folder (a file
written here, read there) and can import the project: a cluster that cannot is refused with one line.
A worker that dies while it runs a step: Dask runs the step again on another worker, up to its
`distributed.scheduler.allowed-failures` (3 by default), then the step fails with one line.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.common.errors import ConfigError, MlopsError, StepError, StepFailed
from mlops.common.names import one_line
from mlops.common.secrets import known
from mlops.plan.steps import StepCall
from mlops.run import signals

EXECUTORS = ("local", "dask")
INSTALL = "pip install 'mlops[dask]'"
PROBE = ".dask-probe"


@dataclass(frozen=True)
class ClusterSettings:
    """The `executor` key and the `dask:` node."""

    executor: str = "local"
    address: str | None = None
    workers: int = 2
    timeout: float = 10.0  # seconds a scheduler has to answer

    @staticmethod
    def of(values: dict[str, Any]) -> ClusterSettings:
        """Return the settings of a resolved config (ConfigError on a bad value)."""
        executor = values.get("executor", "local")
        if executor not in EXECUTORS:
            raise ConfigError(f"executor: '{executor}' is not an executor; choose one of: {', '.join(EXECUTORS)}")
        node = values.get("dask") or {}
        if not isinstance(node, dict):
            raise ConfigError("dask: must map address, workers and timeout to values")
        address, workers = node.get("address"), node.get("workers", 2)
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ConfigError(f"dask.address: '{address}' is not a scheduler address; write e.g. "
                              "dask.address=tcp://10.0.0.5:8786, or null for a local cluster")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"dask.workers: '{workers}' must be a whole number of worker processes, 1 or more")
        timeout = node.get("timeout", 10)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ConfigError(f"dask.timeout: '{timeout}' must be the seconds a scheduler has to answer, above 0")
        return ClusterSettings(str(executor), address, workers, float(timeout))


class DaskExecutor:
    """Run each step as a Dask task and wait for it; `doit -n N` waits on N at once (in threads)."""

    name = "dask"

    def __init__(self, settings: ClusterSettings, project: Path, outputs: Path) -> None:
        self.settings = settings
        self.project = project.resolve()
        self.outputs = outputs
        self._lock = threading.Lock()
        self._client: Any = None
        self._cluster: Any = None
        self._owner = os.getpid()
        self._futures: set[Any] = set()
        signals.ON_STOP.append(self.cancel)

    def run(self, call: StepCall) -> dict[str, Any]:
        """Run `call` on a worker and return what it read (StepError or StepFailed as it failed there)."""
        from distributed.scheduler import KilledWorker

        from mlops.integrations.worker import run_in_project

        client = self._connected()
        future = client.submit(run_in_project, str(self.project), call, known(), pure=False,
                               key=f"{call.task}-{secrets.token_hex(4)}")
        self._futures.add(future)
        try:
            outcome = future.result()
        except KilledWorker as error:
            raise StepError(f"the Dask workers running it died ({one_line(str(error), 200)}); the step runs "
                            "again on the next run") from None
        except Exception as error:  # the cluster went away, the task was cancelled
            raise StepError(f"Dask could not run it: {type(error).__name__}: {one_line(str(error), 200)}") from None
        finally:
            self._futures.discard(future)
        if "failed" in outcome:
            raise StepFailed(outcome["failed"], outcome["trace"])
        if "error" in outcome:
            raise StepError(outcome["error"])
        return outcome["reads"]  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Cancel the steps running on the cluster (on SIGINT or SIGTERM)."""
        futures = list(self._futures)
        if futures and self._client is not None:
            self._client.cancel(futures, force=True)

    def _connected(self) -> Any:
        with self._lock:
            if self._client is None:
                if os.getpid() != self._owner and self.settings.address is None:
                    raise StepError("executor=dask starts its local cluster in doit's main process, and doit's "
                                    "parallel work runs in threads there: drop -P process, or give dask.address")
                self._client = self._connect()
                atexit.register(self.close)
                refused = check_workers(self._client, self.project, self.outputs)
                if refused:
                    raise StepError(refused)
            return self._client

    def _connect(self) -> Any:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise MlopsError(f"executor=dask needs Dask's distributed scheduler: {INSTALL}") from None
        address = self.settings.address
        try:
            if address is None:  # its dashboard on a free port: another cluster may hold the usual one
                self._cluster = LocalCluster(n_workers=self.settings.workers, threads_per_worker=1, processes=True,
                                             host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                             silence_logs=logging.ERROR)
                return Client(self._cluster)
            return Client(address, timeout=self.settings.timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as error:
            raise MlopsError(f"the Dask scheduler {address} cannot be reached ({one_line(str(error), 200)}); "
                             "start it, or point dask.address at one that runs; or run here: executor=local") from None

    def close(self) -> None:
        """Close the connection, and the local cluster if this command started one."""
        for part in (self._client, self._cluster):
            if part is not None:
                with contextlib.suppress(Exception):  # the command is ending: nothing left to save
                    part.close()
        self._client = self._cluster = None


def check_workers(client: Any, project: Path, outputs: Path) -> str:
    """Return why the cluster's workers cannot run this project's steps ("" when they can)."""
    outputs.mkdir(parents=True, exist_ok=True)
    probe = (outputs / PROBE).resolve()
    token = secrets.token_hex(8)
    probe.write_text(token)
    from mlops.integrations.worker import probe_worker

    try:
        answers = client.run(probe_worker, str(project), str(probe), token)
    except Exception as error:
        return (f"the Dask workers cannot run this project's code ({type(error).__name__}: "
                f"{one_line(str(error), 200)}); install the project on every worker")
    finally:
        probe.unlink(missing_ok=True)
    if not answers:
        return "the Dask cluster has no workers; start some, or run here: executor=local"
    for worker, answer in sorted(answers.items()):
        if answer:
            return f"Dask worker {worker} {answer}"
    return ""
