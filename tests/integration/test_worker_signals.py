"""Stopping a real worker: SIGTERM (graceful, then forced), ``conveyor restart``, and the limits
``--once``, ``--max-jobs`` and ``--max-time`` that let a process manager recycle it."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import Conveyor, dispatch_many

from .harness import Workers, gone, wait_until
from .jobs import Noop, Sleepy, SleepyOnce, read_records

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_sigterm_finishes_the_running_job_and_starts_no_other(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    slow = Sleepy(seconds=1.0).dispatch()
    waiting = Noop(n=1).dispatch()
    worker = workers.start("--lease", "2")
    wait_until(lambda: read_records(project, "start"), 15, "the slow job to start")
    worker.send(signal.SIGTERM)
    assert worker.wait(10) == 0

    assert [r["id"] for r in read_records(project, "done")] == [slow]
    assert app.driver().size("default").pending == 1, f"{waiting} should still wait"
    assert app.driver().size("default").reserved == 0
    assert app.driver().failed.count() == 0
    assert f"received SIGTERM: finishing job {slow}" in worker.stderr()


def test_second_sigterm_releases_the_running_job_at_once(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    slow = SleepyOnce(seconds=2.0).dispatch()  # tries = 1: the stop must not use up the try
    worker = workers.start("--lease", "30")
    started = wait_until(lambda: read_records(project, "start"), 15, "the slow job to start")
    worker.send(signal.SIGTERM)
    # two signals sent at once may merge into one: send the second once the first was seen
    wait_until(lambda: "finishing job" in worker.stderr(), 5, "the worker to notice SIGTERM")
    worker.send(signal.SIGTERM)
    assert worker.wait(5) == 0
    assert gone(started[0]["pid"]), "the executor child outlived the forced stop"
    assert read_records(project, "done") == []
    # released, not left to a 30 s lease: the next worker takes it straight away
    size = app.driver().size("default")
    assert (size.pending, size.reserved) == (1, 0)

    again = workers.start("--stop-when-empty", "--lease", "30")
    assert again.wait(15) == 0
    assert [(r["id"], r["attempt"]) for r in read_records(project, "done")] == [(slow, 1)]
    assert app.driver().size("default").total == 0


def test_restart_makes_a_running_worker_exit_after_its_job(
    app: Conveyor, project: Path, workers: Workers, conveyor_cli: Cli
) -> None:
    slow = Sleepy(seconds=1.5).dispatch()
    worker = workers.start("--lease", "5", "--sleep", "0.2")
    wait_until(lambda: read_records(project, "start"), 15, "the slow job to start")
    result = conveyor_cli("restart")
    assert result.returncode == 0, result.stderr
    assert worker.wait(10) == 0
    assert [r["id"] for r in read_records(project, "done")] == [slow]
    assert "restart requested" in worker.stderr()

    # a worker started after the restart signal is not stopped by it
    later = Noop(n=1).dispatch()
    fresh = workers.start("--stop-when-empty")
    assert fresh.wait(15) == 0
    assert "queue empty" in fresh.stderr()
    assert later in [r["id"] for r in read_records(project, "done")]


def test_once_processes_one_job(app: Conveyor, project: Path, workers: Workers) -> None:
    first, _ = dispatch_many([Noop(n=1), Noop(n=2)])
    worker = workers.start("--once")
    assert worker.wait(15) == 0
    assert [r["id"] for r in read_records(project, "done")] == [first]
    assert app.driver().size("default").pending == 1


def test_max_jobs_exits_after_that_many(app: Conveyor, project: Path, workers: Workers) -> None:
    dispatch_many(Noop(n=i) for i in range(5))
    worker = workers.start("--max-jobs", "3")
    assert worker.wait(15) == 0
    assert [r["n"] for r in read_records(project, "done")] == [0, 1, 2]
    assert app.driver().size("default").pending == 2
    assert "--max-jobs 3 reached" in worker.stderr()


def test_max_time_exits_an_idle_worker(project: Path, workers: Workers) -> None:
    worker = workers.start("--max-time", "2", "--sleep", "0.5")
    assert worker.wait(10) == 0
    assert "--max-time 2s reached" in worker.stderr()


def test_sigterm_to_the_whole_process_tree_still_finishes_the_job(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    """What ``systemctl stop`` does by default (KillMode=control-group)."""
    slow = Sleepy(seconds=1.0).dispatch()
    worker = workers.start("--lease", "5")
    wait_until(lambda: read_records(project, "start"), 15, "the slow job to start")
    for pid in [worker.pid, *worker.executor_pids()]:
        os.kill(pid, signal.SIGTERM)
    assert worker.wait(10) == 0
    assert [r["id"] for r in read_records(project, "done")] == [slow]
    assert app.driver().size("default").total == 0


@pytest.fixture
def workers(both_executors: Workers) -> Workers:
    """Every test here runs against both executor children."""
    return both_executors


def test_sigterm_stops_a_worker_waiting_for_a_server_that_is_down(
    project: Path, workers: Workers
) -> None:
    """Nothing is claimed while the server is away, so the first signal stops the worker."""
    down = {"CONVEYOR_CONNECTION": "redis://127.0.0.1:1/0?retry_window=0.2"}
    worker = workers.start("--sleep", "0.2", env=down)
    wait_until(lambda: "unavailable" in worker.stderr(), 20, "the worker retrying its server")
    worker.send(signal.SIGTERM)
    assert worker.wait(5) == 0
