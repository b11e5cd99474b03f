"""Worker options that shape what runs where: queue priority, --memory, and the per-job log line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conveyor import Conveyor, dispatch_many

from .harness import Workers
from .jobs import Hog, Noop, read_records


def test_queues_are_drained_in_priority_order(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    dispatch_many(
        [Noop(n=i) for i in range(5)] + [Noop(n=100 + i).on_queue("high") for i in range(5)]
    )
    worker = workers.start("--queue", "high,default", "--stop-when-empty")
    assert worker.wait(15) == 0
    assert [r["n"] for r in read_records(project, "done")] == [
        100,
        101,
        102,
        103,
        104,
        0,
        1,
        2,
        3,
        4,
    ]


def test_memory_limit_replaces_the_executor_child_between_jobs(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    before, hog, after, last = dispatch_many([Noop(n=1), Hog(mb=120), Noop(n=2), Noop(n=3)])
    worker = workers.start("--memory", "100", "--stop-when-empty")
    assert worker.wait(20) == 0

    pid = {r["id"]: r["pid"] for r in read_records(project, "done")}
    assert pid[before] == pid[hog], "the first jobs share one child"
    assert pid[after] != pid[hog], "the bloated child was not replaced"
    assert pid[after] == pid[last], "the new child was replaced again without cause"
    assert re.search(r"executor child uses \d+ MB, over --memory 100 MB", worker.stderr())


def test_one_log_line_per_job_with_name_id_queue_attempt_outcome(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    job_id = Noop(n=1).on_queue("mail").dispatch()
    worker = workers.start("--queue", "mail", "--stop-when-empty")
    assert worker.wait(15) == 0
    lines = [line for line in worker.stderr().splitlines() if job_id in line]
    assert len(lines) == 1, worker.stderr()
    assert re.search(
        rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\S* INFO +tests\.integration\.jobs:Noop {job_id}"
        r" queue=mail attempt=1 COMPLETED \d+\.\dms$",
        lines[0],
    ), lines[0]


@pytest.fixture
def workers(both_executors: Workers) -> Workers:
    """Every test here runs against both executor children."""
    return both_executors
