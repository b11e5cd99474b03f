"""``--concurrency``: async jobs share one executor process; sync jobs still run one at a time.

Real ``conveyor work`` processes on the test's SQLite file; overlap is read from the start and
done records the jobs write, so no test depends on how fast the machine is.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from conveyor import Conveyor, dispatch_many

from .harness import Workers, wait_until
from .jobs import (
    AsyncBlocksLoop,
    AsyncCrash,
    AsyncNap,
    AsyncNapOnce,
    AsyncStuck,
    Sleepy,
    read_records,
)


def most_at_once(records: list[dict[str, Any]]) -> int:
    """The largest number of jobs that had started and not yet finished at the same time."""
    events = sorted((r["t"], 1 if r["event"] == "start" else -1) for r in records)
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_async_jobs_run_up_to_the_concurrency_at_once(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    ids = dispatch_many(AsyncNap(seconds=0.4, n=i) for i in range(12))
    worker = workers.start("--stop-when-empty", "--concurrency", "5")
    assert worker.wait(30) == 0, worker.stderr()
    records = read_records(project)
    assert most_at_once([r for r in records if r["event"] in ("start", "done")]) == 5
    done = read_records(project, "done")
    assert sorted(r["id"] for r in done) == sorted(ids)
    assert {r["attempt"] for r in done} == {1}
    assert len({r["pid"] for r in done}) == 1, "one executor process runs them all"
    assert app.driver().size("default").total == 0


def test_concurrency_one_runs_async_jobs_one_at_a_time(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    dispatch_many(AsyncNap(seconds=0.1, n=i) for i in range(4))
    worker = workers.start("--stop-when-empty", "--concurrency", "1")
    assert worker.wait(30) == 0, worker.stderr()
    assert most_at_once(read_records(project)) == 1
    assert len(read_records(project, "done")) == 4


def test_a_sync_job_never_runs_beside_another_job_it_was_not_claimed_with(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    """Sync jobs are claimed only when nothing runs, so none waits unstarted in the executor."""
    jobs: list[Any] = []
    for i in range(4):
        jobs += [Sleepy(seconds=0.2), AsyncNap(seconds=0.2, n=i), AsyncNap(seconds=0.2, n=10 + i)]
    dispatch_many(jobs)
    worker = workers.start("--stop-when-empty", "--concurrency", "10")
    assert worker.wait(30) == 0, worker.stderr()
    records = read_records(project)
    sync_ids = {r["id"] for r in records if r["job"] == "Sleepy"}
    for job_id in sync_ids:
        start = next(r["t"] for r in records if r["id"] == job_id and r["event"] == "start")
        end = next(r["t"] for r in records if r["id"] == job_id and r["event"] == "done")
        started_meanwhile = [r for r in records if r["event"] == "start" and start < r["t"] < end]
        assert started_meanwhile == [], "a job started while a sync job ran"
    assert len(read_records(project, "done")) == 12


def test_an_async_timeout_cancels_only_that_job(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    stuck = AsyncStuck().dispatch()
    naps = dispatch_many(AsyncNap(seconds=1.5, n=i) for i in range(3))
    worker = workers.start("--stop-when-empty", "--concurrency", "4")
    assert worker.wait(30) == 0, worker.stderr()
    starts = read_records(project, "start")
    assert [r["attempt"] for r in starts if r["id"] == stuck] == [1, 2]
    assert [r["error"] for r in read_records(project, "failed_hook")] == ["JobTimedOut"]
    record = app.driver().failed.get(stuck)
    assert record is not None and "JobTimedOut" in record.exception
    done = read_records(project, "done")
    assert sorted(r["id"] for r in done) == sorted(naps)
    assert {r["attempt"] for r in done} == {1}, "the neighbours were not disturbed"
    assert len({r["pid"] for r in starts}) == 1, "a cancelled job does not cost the process"


def test_a_job_blocking_the_loop_is_killed_and_its_neighbours_come_back_uncounted(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    nap_id = AsyncNapOnce(seconds=6, n=1).dispatch()  # claimed first, so it starts first
    blocker = AsyncBlocksLoop().dispatch()
    worker = workers.start("--stop-when-empty", "--concurrency", "4")
    assert worker.wait(40) == 0, worker.stderr()
    record = app.driver().failed.get(blocker)
    assert record is not None and "JobTimedOut" in record.exception
    nap_starts = [r for r in read_records(project, "start") if r["id"] == nap_id]
    assert len(nap_starts) == 2, "the neighbour ran again after the kill"
    assert nap_starts[0]["pid"] != nap_starts[1]["pid"]
    done = read_records(project, "done")
    assert [(r["id"], r["attempt"]) for r in done] == [(nap_id, 1)], (
        "the neighbour's killed attempt must not count against its single try"
    )
    assert "another job's timeout stopped the executor; released" in worker.stderr()


def test_a_crashing_async_job_costs_everyone_running_one_attempt(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    crash = AsyncCrash().dispatch()
    naps = dispatch_many(AsyncNap(seconds=2, n=i) for i in range(3))
    worker = workers.start("--stop-when-empty", "--concurrency", "4")
    assert worker.wait(40) == 0, worker.stderr()
    done = read_records(project, "done")
    assert sorted(r["id"] for r in done) == sorted([crash, *naps])
    assert {r["attempt"] for r in done} == {2}
    assert "WorkerLost" in worker.stderr()
    assert app.driver().failed.count() == 0


def test_sigterm_finishes_every_running_job_then_exits(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    ids = dispatch_many(AsyncNap(seconds=1.5, n=i) for i in range(6))
    worker = workers.start("--concurrency", "4")
    wait_until(lambda: len(read_records(project, "start")) == 4, 15, "four jobs to start")
    worker.send(signal.SIGTERM)
    assert worker.wait(20) == 0, worker.stderr()
    done = read_records(project, "done")
    assert len(done) == 4 and {r["attempt"] for r in done} == {1}
    assert app.driver().size("default").pending == 2, "no new job after the signal"
    left = set(ids) - {r["id"] for r in done}
    assert len(left) == 2


def test_a_second_sigterm_hands_running_jobs_back_without_charging_them(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    ids = dispatch_many(AsyncNapOnce(seconds=3, n=i) for i in range(3))
    worker = workers.start("--concurrency", "4")
    wait_until(lambda: len(read_records(project, "start")) == 3, 15, "three jobs to start")
    worker.send(signal.SIGTERM)
    # two signals sent at once may merge into one: send the second once the first was seen
    wait_until(lambda: "finishing job" in worker.stderr(), 5, "the worker to notice SIGTERM")
    worker.send(signal.SIGTERM)
    assert worker.wait(15) == 0, worker.stderr()
    assert read_records(project, "done") == []
    assert app.driver().size("default").pending == 3

    again = workers.start("--concurrency", "4", "--stop-when-empty")
    assert again.wait(30) == 0, again.stderr()
    done = read_records(project, "done")
    assert sorted(r["id"] for r in done) == sorted(ids)
    assert {r["attempt"] for r in done} == {1}, (
        "a claim handed back on a forced stop must not count"
    )
    assert app.driver().failed.count() == 0


def test_sigkill_with_async_jobs_in_flight_runs_them_all_again(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    ids = dispatch_many(AsyncNap(seconds=1, n=i) for i in range(5))
    first = workers.start("--concurrency", "10", "--lease", "2")
    wait_until(lambda: len(read_records(project, "start")) == 5, 15, "all five to start")
    first.kill()
    second = workers.start("--concurrency", "10", "--lease", "2")
    wait_until(lambda: len(read_records(project, "done")) == 5, 20, "all five to run again")
    second.send(signal.SIGTERM)
    assert second.wait(10) == 0, second.stderr()
    done = read_records(project, "done")
    assert sorted(r["id"] for r in done) == sorted(ids)
    assert {r["attempt"] for r in done} == {2}
    assert app.driver().size("default").total == 0
