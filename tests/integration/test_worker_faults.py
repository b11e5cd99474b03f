"""Real workers against what kills or hangs them: SIGKILL, crashing jobs, hangs, broken payloads.

Every test runs ``conveyor work`` processes on the embedded SQLite file of its own project
folder, with leases and timeouts of a second or two.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from conveyor import Conveyor, dispatch_many

from .harness import Workers, gone, wait_until
from .jobs import Crash, Hang, HangFailOnTimeout, KillsWorker, Noop, Sleepy, read_records


def log_line(stderr: str, job_id: str, attempt: int) -> str:
    """The worker's one line about an attempt: job, id, queue, attempt and outcome."""
    found = [
        line for line in stderr.splitlines() if job_id in line and f"attempt={attempt} " in line
    ]
    assert len(found) == 1, f"expected one log line for {job_id} attempt {attempt}:\n{stderr}"
    return found[0]


def failed_exception(app: Conveyor, job_id: str) -> str:
    record = app.driver().failed.get(job_id)
    assert record is not None, f"job {job_id} is not in the failed store"
    return record.exception


@pytest.mark.slow
def test_sigkill_mid_job_runs_it_again_after_the_lease(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    slow = Sleepy(seconds=1.5).dispatch()
    quick = dispatch_many(Noop(n=i) for i in range(5))
    first = workers.start("--lease", "2")
    started = wait_until(lambda: read_records(project, "start"), 15, "the slow job to start")
    first.kill()
    wait_until(lambda: gone(started[0]["pid"]), 0.5, "the executor child to die with its worker")

    second = workers.start("--lease", "2")
    wait_until(
        lambda: any(r["attempt"] == 2 for r in read_records(project, "done")), 15,
        "the slow job to run again and finish",
    )  # fmt: skip
    second.send(signal.SIGTERM)
    assert second.wait(10) == 0

    starts = read_records(project, "start")
    assert [(r["id"], r["attempt"]) for r in starts] == [(slow, 1), (slow, 2)]
    assert starts[1]["t"] - starts[0]["t"] >= 1.0, "re-run before the lease ran out"
    done = read_records(project, "done")
    assert sorted(r["id"] for r in done) == sorted([slow, *quick])
    assert app.driver().size("default").total == 0
    assert app.driver().failed.count(None) == 0


def test_an_executor_killed_while_idle_is_replaced_at_the_next_job(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    """The OOM killer (or a hand) may take the executor child between jobs."""
    first = Noop(n=1).dispatch()
    worker = workers.start()
    done = wait_until(lambda: read_records(project, "done"), 15, "the first job to run")
    # idle means its outcome is in: the job records "done" before it returns
    completed = f"{first} queue=default attempt=1 COMPLETED"
    wait_until(lambda: completed in worker.stderr(), 15, "the first job's outcome")
    child = done[0]["pid"]
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: gone(child), 5, "the idle executor child to die")
    second = Noop(n=2).dispatch()
    wait_until(lambda: len(read_records(project, "done")) == 2, 15, "the second job to run")
    assert worker.alive()
    worker.send(signal.SIGTERM)
    assert worker.wait(10) == 0
    records = read_records(project, "done")
    assert [(r["id"], r["attempt"]) for r in records] == [(first, 1), (second, 1)]
    assert records[1]["pid"] != child
    assert app.driver().failed.count() == 0


@pytest.mark.parametrize("how", ["exit", "segv"])
def test_job_that_kills_its_executor_every_time_fails_after_tries(
    app: Conveyor, project: Path, workers: Workers, how: str
) -> None:
    poison = Crash(how=how).dispatch()
    after = Noop(n=1).dispatch()
    worker = workers.start("--stop-when-empty", "--lease", "2")
    assert worker.wait(30) == 0

    starts = read_records(project, "start")
    assert [r["attempt"] for r in starts] == [1, 2, 3]
    assert len({r["pid"] for r in starts}) == 3, "a dead child must be replaced"
    error = failed_exception(app, poison)
    assert "WorkerLost" in error
    assert ("exit code 3" if how == "exit" else "signal 11") in error
    assert "attempt 3 of 3" in error
    assert [r["error"] for r in read_records(project, "failed_hook")] == ["WorkerLost"]
    assert [r["id"] for r in read_records(project, "done")] == [after]
    stderr = worker.stderr()
    assert "RELEASED" in log_line(stderr, poison, 1)
    assert "FAILED" in log_line(stderr, poison, 3)


@pytest.mark.slow
def test_job_that_kills_the_whole_worker_every_time_fails_after_tries(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    poison = KillsWorker().dispatch()
    for round_ in range(4):
        worker = workers.start("--lease", "1")
        wait_until(
            lambda w=worker: not w.alive() or app.driver().failed.get(poison),
            15,  # type: ignore[misc]
            f"worker {round_} to die or fail the job",
        )
        if worker.alive():
            break
        assert worker.proc.returncode == -9
    else:
        pytest.fail("the job was never failed")
    worker.send(signal.SIGTERM)
    assert worker.wait(10) == 0

    starts = read_records(project, "start")
    assert [r["attempt"] for r in starts] == [1, 2]
    for r in starts:
        wait_until(lambda pid=r["pid"]: gone(pid), 3, "the orphaned executor child to die")
    assert read_records(project, "orphan_finished") == []
    error = failed_exception(app, poison)
    assert "MaxAttemptsExceeded" in error and "tries=2" in error
    assert [r["error"] for r in read_records(project, "failed_hook")] == ["MaxAttemptsExceeded"]
    assert app.driver().size("default").total == 0


@pytest.mark.parametrize("kind", ["spin", "sleep", "recv", "regex"])
def test_hanging_job_is_killed_at_its_timeout_and_retried_then_failed(
    app: Conveyor, project: Path, workers: Workers, kind: str
) -> None:
    hung = Hang(kind=kind).dispatch()
    after = Noop(n=1).dispatch()
    worker = workers.start("--stop-when-empty", "--lease", "2")
    assert worker.wait(30) == 0

    starts = read_records(project, "start")
    assert [r["attempt"] for r in starts] == [1, 2]
    # timeout 1 s, no backoff: the second attempt starts once the first was killed
    assert starts[1]["t"] - starts[0]["t"] < 1 + 4
    assert all(gone(r["pid"]) for r in starts)
    assert "JobTimedOut" in failed_exception(app, hung)
    hooks = read_records(project, "failed_hook")
    assert [(r["id"], r["error"]) for r in hooks] == [(hung, "JobTimedOut")]
    assert [r["id"] for r in read_records(project, "done")] == [after]
    stderr = worker.stderr()
    first = log_line(stderr, hung, 1)
    assert "RELEASED" in first and "JobTimedOut" in first
    assert "FAILED" in log_line(stderr, hung, 2)


def test_fail_on_timeout_fails_at_the_first_timeout(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    hung = HangFailOnTimeout(kind="sleep").dispatch()
    after = Noop(n=1).dispatch()
    worker = workers.start("--stop-when-empty", "--lease", "2")
    assert worker.wait(20) == 0

    assert [r["attempt"] for r in read_records(project, "start")] == [1]
    error = failed_exception(app, hung)
    assert "JobTimedOut" in error and "fail_on_timeout" in error
    assert [r["error"] for r in read_records(project, "failed_hook")] == ["JobTimedOut"]
    assert [r["id"] for r in read_records(project, "done")] == [after]


def _insert_raw(db: Path, rows: dict[str, bytes | str]) -> None:
    conn = sqlite3.connect(db)
    try:
        with conn:
            for job_id, payload in rows.items():
                conn.execute(
                    "INSERT INTO conveyor_jobs (id, queue, payload, attempts, available_at,"
                    " created_at) VALUES (?, 'default', ?, 0, ?, ?)",
                    (job_id, payload, time.time() - 1, time.time() - 1),
                )
    finally:
        conn.close()


def _envelope(job_id: str, job: str, args: dict[str, object]) -> str:
    return json.dumps({"id": job_id, "job": job, "args": args, "queue": "default", "tries": 3})


def test_broken_payloads_go_to_the_failed_store_with_a_reason(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    app.driver().size("default")  # creates the tables
    reasons = {
        "bad-bytes": (b"\xff\xfe\x00\x9c not utf-8", r"malformed job payload"),
        "not-json": ("{this is not json", r"malformed job payload"),
        "no-class": (
            _envelope("no-class", "tests.integration.jobs:Nope", {}),
            r"unknown job 'tests\.integration\.jobs:Nope'",
        ),
        "no-module": (
            _envelope("no-module", "nowhere.at.all:Thing", {}),
            r"unknown job 'nowhere\.at\.all:Thing'",
        ),
        "wrong-type": (
            _envelope("wrong-type", "tests.integration.jobs:Typed", {"n": "many"}),
            r"Typed: arguments do not match its fields.*\$\.n",
        ),
    }
    _insert_raw(project / "conveyor.db", {k: v[0] for k, v in reasons.items()})
    after = Noop(n=1).dispatch()
    worker = workers.start("--stop-when-empty", "--lease", "2", "--tries", "3")
    assert worker.wait(20) == 0

    stderr = worker.stderr()
    for job_id, (_, reason) in reasons.items():
        assert re.search(reason, failed_exception(app, job_id)), job_id
        assert "FAILED" in log_line(stderr, job_id, 1)
        assert f"{job_id} queue=default attempt=2" not in stderr
    assert "Traceback" not in stderr
    assert [r["id"] for r in read_records(project, "done")] == [after]
    assert app.driver().size("default").total == 0


@pytest.mark.slow
def test_a_job_longer_than_its_lease_keeps_it_while_it_runs(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    slow = Sleepy(seconds=3.0).dispatch()
    pool = workers.start_many(2, "--lease", "1", "--sleep", "0.1")
    wait_until(lambda: read_records(project, "done"), 15, "the slow job to finish")
    for worker in pool:
        worker.send(signal.SIGTERM)
    assert [w.wait(10) for w in pool] == [0, 0]
    assert [(r["id"], r["attempt"]) for r in read_records(project, "start")] == [(slow, 1)]
    assert "lost the lease" not in pool[0].stderr() + pool[1].stderr()


@pytest.fixture
def workers(both_executors: Workers) -> Workers:
    """Every test here runs against both executor children."""
    return both_executors
