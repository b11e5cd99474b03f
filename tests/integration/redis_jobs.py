"""Jobs the Redis fault tests run in real workers; each run is one line in ``runs.log``.

The log sits in the worker's working directory (the test's folder), outside Redis, so that a
Redis restart cannot lose the evidence. Each line is written with one ``write`` on an
``O_APPEND`` descriptor, so lines of concurrent processes never interleave, and a line is on
disk the moment it is written, even if the worker is killed right after.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from conveyor import Job

RUNS = "runs.log"


def log(event: str, job: Job) -> None:
    entry = {"event": event, "id": job.job_id, "attempt": job.attempts(),
             "worker": os.getppid(), "t": time.time()}  # fmt: skip
    fd = os.open(RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def read_runs(folder: Path, event: str | None = None) -> list[dict[str, Any]]:
    path = folder / RUNS
    if not path.exists():
        return []
    # a line being written this moment may be there in part: only whole lines count
    rows = [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]
    return [r for r in rows if event is None or r["event"] == event]


def finished(folder: Path) -> Counter[str]:
    """How many times each job id ran to the end."""
    return Counter(r["id"] for r in read_runs(folder, "end"))


class Tick(Job):
    """A short job; ``seconds`` makes a few of them long enough to be killed in the middle.

    ``worker`` in the log is the executor's parent: the ``conveyor work`` process that ran it.
    """

    n: int
    seconds: float = 0.002

    def handle(self) -> None:
        log("start", self)
        time.sleep(self.seconds)
        log("end", self)


class SlowTick(Tick):
    """A job a test kills its worker in the middle of: it may take a second attempt."""

    seconds: float = 1.5
    tries = 3


class Nothing(Job):
    """The no-op job of the drain measurement (``redis_measure.py``)."""

    def handle(self) -> None:
        pass


class Stamp(Job):
    """Logs how long after its dispatch it started: the idle-latency measurement."""

    dispatched_at: float

    def handle(self) -> None:
        line = f"{time.time() - self.dispatched_at!r}\n".encode()
        fd = os.open("latency.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


class Flaky(Tick):
    """Fails its first two attempts: each run must see the attempt the backend counted."""

    tries = 3

    def handle(self) -> None:
        log("start", self)
        if self.attempts() < 3:
            raise RuntimeError(f"attempt {self.attempts()} fails on purpose")
        log("end", self)


class Crash(Tick):
    """Ends its executor process in the middle of the job, as a segfault would."""

    seconds: float = 0.3
    tries = 1

    def handle(self) -> None:
        log("start", self)
        time.sleep(self.seconds)
        os._exit(1)


class Hang(Tick):
    """Outlives its timeout: the worker kills its executor process."""

    seconds: float = 30.0
    timeout = 0.5
    tries = 1


class AsyncNap(Tick):
    """An ``async def handle`` job that runs beside others in the event-loop executor."""

    seconds: float = 0.3

    async def handle(self) -> None:
        log("start", self)
        await asyncio.sleep(self.seconds)
        log("end", self)


class AsyncFlaky(Tick):
    """``Flaky`` with an ``async def handle``: it runs beside the sync jobs queued around it."""

    tries = 3

    async def handle(self) -> None:
        log("start", self)
        await asyncio.sleep(0)
        if self.attempts() < 3:
            raise RuntimeError(f"attempt {self.attempts()} fails on purpose")
        log("end", self)


class Brief(Tick):
    """A quick job with a short timeout: it fails if its clock starts before it does."""

    timeout = 0.4
    tries = 1
