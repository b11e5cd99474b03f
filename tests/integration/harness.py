"""Running real ``conveyor`` processes from a test, and waiting on them without fixed sleeps.

Shared by every integration suite (SQLite, Redis, SQL servers): nothing here knows a backend.
A worker runs with the test's project folder as its working directory, so a connection given
by a relative path, the jobs' record file and the worker's stderr all stay inside that folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
JOBS_MODULE = "tests.integration.jobs"
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float, message: str = "", interval: float = 0.05
) -> T:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g}s: {message or condition}")
        time.sleep(interval)


def gone(pid: int) -> bool:
    """The process has exited (a zombie counts: it runs nothing any more)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def process_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: no CONVEYOR_* from outside, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def conveyor_command(*args: str, app: str | None = JOBS_MODULE) -> list[str]:
    """``python -m conveyor [--app MODULE] ARGS``, with this interpreter (no PATH lookup)."""
    return [sys.executable, "-m", "conveyor", *(("--app", app) if app else ()), *args]


def run_conveyor(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to completion, as a user would from the project folder."""
    return subprocess.run(
        conveyor_command(*args), cwd=cwd, env=process_env(env), capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


class WorkerProcess:
    """A running ``conveyor work``; stderr goes to a file so a chatty worker never blocks."""

    def __init__(self, cwd: Path, args: Sequence[str], env: Mapping[str, str] | None, n: int):
        self.args = list(args)
        self.stderr_path = cwd / f"worker-{n}.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            conveyor_command("work", *args), cwd=cwd, env=process_env(env),
            stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
        )  # fmt: skip
        self._family: dict[int, psutil.Process] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def executor_pids(self) -> list[int]:
        """The worker's descendants right now (its executor child, and anything a job spawned)."""
        try:
            kids = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self._family.update((kid.pid, kid) for kid in kids)
        return [kid.pid for kid in kids]

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Exit code; on timeout, fail with the worker's stderr so the reason is visible."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker {self.args} still running after {timeout:g}s; stderr:\n{self.stderr()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL the control process only, as the OOM killer or a crash would."""
        self.executor_pids()
        if self.alive():
            self.proc.kill()
        self.proc.wait(10)

    def cleanup(self) -> None:
        """Kill this worker and every process it was seen to start that is still around."""
        self.kill()
        self._stderr.close()
        for kid in self._family.values():
            try:
                kid.kill()  # psutil refuses if the pid now belongs to another process
            except psutil.NoSuchProcess:
                continue


class Workers:
    """Starts workers for one test and makes sure none outlives it."""

    def __init__(self, cwd: Path, extra: Sequence[str] = ()) -> None:
        self.cwd = cwd
        #: options every worker of the test gets, before its own (which win)
        self.extra = tuple(extra)
        self.started: list[WorkerProcess] = []

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(self.cwd, (*self.extra, *args), env, len(self.started))
        self.started.append(worker)
        return worker

    def start_many(
        self, count: int, *args: str, env: Mapping[str, str] | None = None
    ) -> list[WorkerProcess]:
        return [self.start(*args, env=env) for _ in range(count)]

    def cleanup(self) -> None:
        for worker in self.started:
            worker.cleanup()
