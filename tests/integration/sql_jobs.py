"""The job the SQL fault tests run in real workers: it records every execution to a file.

Each line is written with one ``write`` on an ``O_APPEND`` descriptor, so concurrent processes
never interleave, and a line is on disk the moment it is written even if the process is then
killed. A line names the worker (the executor's parent) so a test can tell which jobs were in
flight on a worker it killed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from conveyor import Job

TALLY = "sql_tally.log"


class Tally(Job):
    """Writes ``start`` when it begins and ``done`` when it ends; a few tries survive kills."""

    n: int
    seconds: float = 0.0
    tries = 5

    def handle(self) -> None:
        _write("start", self)
        if self.seconds:
            time.sleep(self.seconds)
        _write("done", self)


class Once(Tally):
    """A single try: a claim lost with a broken connection would fail it with no run at all."""

    tries = 1


def _write(event: str, job: Tally) -> None:
    line = f"{event} {job.job_id} {os.getppid()} {job.attempts()} {job.n} {time.time():.6f}\n"
    fd = os.open(TALLY, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Entry:
    event: str
    job_id: str
    worker: int
    attempt: int
    n: int
    t: float


def read_tally(folder: Path) -> list[Entry]:
    path = folder / TALLY
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 6:  # a line cut by a kill mid-write is not an execution record
            event, job_id, worker, attempt, n, t = parts
            entries.append(Entry(event, job_id, int(worker), int(attempt), int(n), float(t)))
    return entries


class Nothing(Job):
    """A no-op, for measuring what the queue itself costs."""

    def handle(self) -> None:
        return None


class Probe(Job):
    """Records when it started, for dispatch-to-start latency."""

    sent: float

    def handle(self) -> None:
        fd = os.open("sql_probe.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{self.sent:.6f} {time.time():.6f}\n".encode())
        finally:
            os.close(fd)
