"""Jobs the integration tests run in real workers; each records what happened to a file.

The record file sits in the worker's working directory (the test's project folder). Each record
is one JSON line written with a single ``write`` on an ``O_APPEND`` descriptor, so lines from
concurrent processes never interleave, and a line is on disk the moment the job moves on, even
if the process is killed right after.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import signal
import socket
import time
from pathlib import Path
from typing import Any

from conveyor import Job

RECORDS = "records.log"
_HOARD: list[bytes] = []


def record(event: str, job: Job | None = None, **extra: Any) -> None:
    entry: dict[str, Any] = {"event": event, "pid": os.getpid(), "t": time.time(), **extra}
    if job is not None:
        entry.update(job=type(job).__name__, id=job.job_id, attempt=job.attempts())
    fd = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def read_records(folder: Path, event: str | None = None) -> list[dict[str, Any]]:
    path = folder / RECORDS
    if not path.exists():
        return []
    # a line being written this moment may be there in part: only whole lines count
    rows = [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]
    return [r for r in rows if event is None or r["event"] == event]


class Noop(Job):
    n: int = 0

    def handle(self) -> None:
        record("done", self, n=self.n)


class Sleepy(Job):
    """Runs for a while, so a test can act on the worker in the middle of a job."""

    seconds: float
    tries = 3

    def handle(self) -> None:
        record("start", self)
        time.sleep(self.seconds)
        record("done", self)


class SleepyOnce(Sleepy):
    tries = 1


class Crash(Job):
    """Takes down the executor child on every attempt."""

    how: str
    tries = 3

    def handle(self) -> None:
        record("start", self)
        if self.how == "exit":
            os._exit(3)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(5)

    def failed(self, exc: BaseException) -> None:
        record("failed_hook", self, error=type(exc).__name__)


class KillsWorker(Job):
    """SIGKILLs the control process (the executor child's parent) on every attempt."""

    tries = 2

    def handle(self) -> None:
        record("start", self)
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(5)
        record("orphan_finished", self)

    def failed(self, exc: BaseException) -> None:
        record("failed_hook", self, error=type(exc).__name__)


def _spin() -> None:
    while True:
        pass


def _recv() -> None:
    left, right = socket.socketpair()
    try:
        left.recv(1)
    finally:
        left.close()
        right.close()


def _backtrack() -> None:
    """Catastrophic backtracking: the regex engine runs in C and never releases the GIL."""
    re.match(r"(a+)+$", "a" * 40 + "b")


HANGS = {
    "spin": _spin,
    "sleep": lambda: time.sleep(1000),
    "recv": _recv,
    "regex": _backtrack,
}


class Hang(Job):
    kind: str
    tries = 2
    timeout = 1

    def handle(self) -> None:
        record("start", self)
        HANGS[self.kind]()
        record("done", self)

    def failed(self, exc: BaseException) -> None:
        record("failed_hook", self, error=type(exc).__name__, message=str(exc))


class HangFailOnTimeout(Hang):
    tries = 3
    fail_on_timeout = True


class Hog(Job):
    """Allocates memory that outlives the job, as a leaking cache would."""

    mb: int

    def handle(self) -> None:
        _HOARD.append(b"\x01" * (self.mb << 20))
        record("done", self)


class Typed(Job):
    n: int

    def handle(self) -> None:
        record("done", self, n=self.n)


class AsyncNap(Job):
    """An I/O-bound job: many of them share one executor process under ``--concurrency``."""

    seconds: float
    n: int = 0
    tries = 3

    async def handle(self) -> None:
        record("start", self, n=self.n)
        await asyncio.sleep(self.seconds)
        record("done", self, n=self.n)


class AsyncStuck(Job):
    """Never finishes on its own: the executor child cancels it at its timeout."""

    tries = 2
    timeout = 1

    async def handle(self) -> None:
        record("start", self)
        await asyncio.sleep(1000)

    async def failed(self, exc: BaseException) -> None:
        record("failed_hook", self, error=type(exc).__name__)


class AsyncBlocksLoop(AsyncStuck):
    """``async def`` that blocks the event loop, so only the control process can stop it."""

    tries = 1

    async def handle(self) -> None:
        record("start", self)
        time.sleep(1000)


class AsyncCrash(Job):
    """Takes the executor child, and every job running in it, down once."""

    tries = 3

    async def handle(self) -> None:
        record("start", self)
        await asyncio.sleep(0.3)
        if self.attempts() == 1:
            os._exit(3)
        record("done", self)


class AsyncNapOnce(AsyncNap):
    tries = 1


class _StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ itself fails")


class _StrNotStr(Exception):
    def __str__(self) -> str:
        return 42  # type: ignore[return-value]


#: exception texts that no backend stores as they are, and what the failed store keeps of each
HOSTILE_TEXTS: dict[str, tuple[BaseException, str]] = {
    "nul": (ValueError("bad \x00 byte"), "ValueError: bad \\x00 byte"),
    "surrogate": (
        FileNotFoundError(b"r-\xff".decode("utf-8", "surrogateescape")),
        "FileNotFoundError: r-\\udcff",
    ),
    "huge": (ValueError("x" * 1_000_000), "characters cut"),
    "str_raises": (_StrRaises(), "_StrRaises"),
    "str_not_str": (_StrNotStr(), "_StrNotStr"),
}


class Raises(Job):
    """Fails for good with an exception whose text is one of ``HOSTILE_TEXTS``."""

    kind: str

    def handle(self) -> None:
        record("start", self)
        raise HOSTILE_TEXTS[self.kind][0]
