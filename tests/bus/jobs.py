"""Jobs and callbacks the bus tests run; each records what happened as one JSON line.

Records go to a file in the working directory (the test's project folder), written with one
``write`` on an ``O_APPEND`` descriptor, so lines from concurrent worker processes never
interleave and a line is on disk the moment the job moves on, even if its process is killed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from conveyor import Batch, Job, JobFailure

RECORDS = "bus-records.log"


def record(event: str, **extra: Any) -> None:
    line = json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **extra}) + "\n"
    fd = os.open(RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_records(folder: Path, event: str | None = None) -> list[dict[str, Any]]:
    path = folder / RECORDS
    if not path.exists():
        return []
    # a line being written this moment may be there in part: only whole lines count
    rows = [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]
    return [r for r in rows if event is None or r["event"] == event]


def _ran(job: Job, key: str) -> None:
    ctx = job._context
    record(
        "run", key=key, id=job.job_id, attempt=job.attempts(),
        batch=ctx.batch_id if ctx else None, queue=ctx.queue if ctx else None,
    )  # fmt: skip


class Step(Job):
    """Records that it ran; sleeps first if asked; raises afterwards if ``boom``."""

    key: str
    boom: bool = False
    sleep: float = 0.0

    def handle(self) -> None:
        if self.sleep:
            time.sleep(self.sleep)
        _ran(self, self.key)
        if self.boom:
            raise ValueError(f"{self.key} exploded")


class Flaky(Job):
    """Fails its first run (leaving a marker file), succeeds once retried."""

    key: str

    def handle(self) -> None:
        _ran(self, self.key)
        marker = Path(f"flaky-{self.key}")
        if not marker.exists():
            marker.touch()
            raise RuntimeError(f"{self.key}: the first attempt fails")


class Adder(Job):
    """Adds ``count`` jobs to its own batch, as a job that discovers more work would."""

    key: str
    count: int

    def handle(self) -> None:
        _ran(self, self.key)
        batch = self.batch()
        assert batch is not None
        batch.add([Step(key=f"{self.key}.{i}") for i in range(self.count)])


class Canceller(Job):
    key: str

    def handle(self) -> None:
        _ran(self, self.key)
        batch = self.batch()
        assert batch is not None
        batch.cancel()


class Notify(Job):
    """A Job used as a callback: it reaches the batch it was fired for."""

    tag: str

    def handle(self) -> None:
        batch = self.batch()
        record(
            "notify", tag=self.tag, batch=batch.id if batch else None, id=self.job_id,
            attempt=self.attempts(), processed=batch.processed_jobs if batch else None,
        )  # fmt: skip


def on_then(batch: Batch) -> None:
    record("then", batch=batch.id, processed=batch.processed_jobs, total=batch.total_jobs)


def on_catch(batch: Batch, error: JobFailure) -> None:
    record("catch", batch=batch.id, error=str(error), job=error.job_id)


def on_finally(batch: Batch) -> None:
    record(
        "finally", batch=batch.id, failed=batch.failed_jobs, cancelled=batch.cancelled(),
        finished=batch.finished(),
    )  # fmt: skip


def on_chain_failed(error: JobFailure) -> None:
    record("chain_catch", error=str(error), job=error.job_id)


class Doomed(Job):
    """Always fails, and is tried once: it fails for good at its first attempt."""

    key: str
    tries = 1

    def handle(self) -> None:
        _ran(self, self.key)
        raise RuntimeError(f"{self.key} is doomed")
