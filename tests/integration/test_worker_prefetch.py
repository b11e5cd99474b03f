"""Prefetch on Redis: while a sync job runs, the worker claims the next one without counting
its attempt and queues it in the executor, which starts it the moment the running job ends; it
is recalled and handed back when it waits longer than ``--prefetch-hold``, when the worker
stops, and it survives the loss of the executor it was queued in.

Real ``conveyor work`` processes on a private Redis. The jobs run with ``tries = 1`` where a
wrongly counted attempt would show: such a job would land in the failed store unrun.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from conveyor import Conveyor, dispatch_many

from .harness import Workers, wait_until
from .redis_jobs import (
    AsyncFlaky,
    AsyncNap,
    Brief,
    Crash,
    Flaky,
    Hang,
    SlowTick,
    Tick,
    finished,
    read_runs,
)
from .redis_server import RedisServer
from .test_redis_faults import default_app, server, use_app, worker_env

__all__ = ["server", "use_app"]  # fixtures
pytestmark = pytest.mark.slow


def reserved(app: Conveyor) -> int:
    return app.driver().size("default").reserved


def started(project: Path, job_id: str) -> list[dict[str, object]]:
    return [r for r in read_runs(project, "start") if r["id"] == job_id]


def test_a_prefetched_job_of_a_killed_worker_runs_later_as_its_first_attempt(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    app = default_app(project, server.url, use_app)
    slow, quick = dispatch_many([SlowTick(n=0, seconds=3.0), Tick(n=1)])
    env = worker_env(server.url)
    victim = both_executors.start("--lease", "1", "--prefetch-hold", "30", env=env)
    wait_until(lambda: started(project, slow), 20, "the slow job to start")
    wait_until(lambda: reserved(app) == 2, 10, "the next job to be prefetched")
    assert started(project, quick) == []
    victim.kill()
    both_executors.start("--lease", "1", env=env)
    wait_until(lambda: finished(project)[quick] + finished(project)[slow] == 2, 30, "both jobs")
    assert app.driver().failed.count() == 0, "the prefetched job was charged an attempt"
    assert [r["attempt"] for r in started(project, quick)] == [1]
    assert finished(project)[quick] == 1
    assert [r["attempt"] for r in started(project, slow)][-1] == 2


def test_a_prefetched_job_goes_to_another_worker_while_a_long_job_runs(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    app = default_app(project, server.url, use_app)
    slow, quick = dispatch_many([SlowTick(n=0, seconds=2.0), Tick(n=1)])
    env = worker_env(server.url)
    busy = both_executors.start("--prefetch-hold", "0.05", env=env)
    wait_until(lambda: started(project, slow), 20, "the slow job to start")
    idle = both_executors.start(env=env)
    wait_until(lambda: finished(project)[quick] == 1, 20, "the quick job to finish")
    (run,) = started(project, quick)
    assert run["worker"] == idle.pid and run["attempt"] == 1
    assert finished(project)[slow] == 0, "it ran while the slow job was still running"
    wait_until(lambda: finished(project)[slow] == 1, 20, "the slow job to finish")
    # the job logs its end before its worker acknowledges it
    wait_until(lambda: app.driver().size("default").total == 0, 10, "the queue to empty")
    assert busy.alive()


def test_sigterm_finishes_the_running_job_and_hands_back_the_prefetched_one_unrun(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    app = default_app(project, server.url, use_app)
    slow, quick = dispatch_many([SlowTick(n=0, seconds=1.0), Tick(n=1)])
    env = worker_env(server.url)
    worker = both_executors.start("--prefetch-hold", "30", env=env)
    wait_until(lambda: started(project, slow), 20, "the slow job to start")
    wait_until(lambda: reserved(app) == 2, 10, "the next job to be prefetched")
    worker.send(signal.SIGTERM)
    assert worker.wait(20) == 0, worker.stderr()
    assert finished(project)[slow] == 1
    assert started(project, quick) == []
    size = app.driver().size("default")
    assert (size.pending, size.reserved) == (1, 0)
    after = both_executors.start("--stop-when-empty", env=env)
    assert after.wait(30) == 0, after.stderr()
    assert [r["attempt"] for r in started(project, quick)] == [1]


def test_several_prefetched_jobs_of_a_killed_worker_run_later_as_their_first_attempts(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    app = default_app(project, server.url, use_app)
    slow, *quick = dispatch_many([SlowTick(n=0, seconds=3.0), *(Tick(n=i) for i in range(1, 5))])
    env = worker_env(server.url)
    victim = both_executors.start(
        "--lease", "1", "--prefetch-hold", "30", "--prefetch", "3", env=env
    )
    wait_until(lambda: started(project, slow), 20, "the slow job to start")
    wait_until(lambda: reserved(app) == 4, 10, "three jobs to be prefetched")
    assert app.driver().size("default").pending == 1, "--prefetch 3 claims three, not four"
    assert all(started(project, job) == [] for job in quick)
    victim.kill()
    both_executors.start("--lease", "1", env=env)
    wait_until(lambda: sum(finished(project).values()) == 5, 30, "all five jobs")
    assert app.driver().failed.count() == 0, "a prefetched job was charged an attempt"
    assert [[r["attempt"] for r in started(project, job)] for job in quick] == [[1]] * 4
    assert [r["attempt"] for r in started(project, slow)][-1] == 2


def test_sigterm_hands_back_every_prefetched_job_unrun(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    app = default_app(project, server.url, use_app)
    slow, *quick = dispatch_many([SlowTick(n=0, seconds=1.0), *(Tick(n=i) for i in range(1, 4))])
    env = worker_env(server.url)
    worker = both_executors.start("--prefetch-hold", "30", "--prefetch", "3", env=env)
    wait_until(lambda: started(project, slow), 20, "the slow job to start")
    wait_until(lambda: reserved(app) == 4, 10, "three jobs to be prefetched")
    worker.send(signal.SIGTERM)
    assert worker.wait(20) == 0, worker.stderr()
    assert finished(project)[slow] == 1
    assert all(started(project, job) == [] for job in quick)
    size = app.driver().size("default")
    assert (size.pending, size.reserved) == (3, 0)
    after = both_executors.start("--stop-when-empty", env=env)
    assert after.wait(30) == 0, after.stderr()
    assert [[r["attempt"] for r in started(project, job)] for job in quick] == [[1]] * 3


def test_prefetched_jobs_see_the_attempt_counted_for_them_and_run_once(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    """Retried and plain jobs mixed: a job prefetched after a release (settled on its own, not
    in the combined round trip) is counted as well as one prefetched after an acknowledgement."""
    app = default_app(project, server.url, use_app)
    jobs: list[Tick] = []
    for i in range(60):
        jobs += [Tick(n=i), Flaky(n=i)] if i % 3 == 0 else [Tick(n=i)]
    ids = dispatch_many(jobs)
    flaky = {job_id for job_id, job in zip(ids, jobs, strict=True) if isinstance(job, Flaky)}
    env = worker_env(server.url)
    worker = both_executors.start("--stop-when-empty", "--prefetch-hold", "30", env=env)
    assert worker.wait(60) == 0, worker.stderr()
    runs = read_runs(project, "start")
    attempts: dict[str, list[int]] = {}
    for r in runs:
        attempts.setdefault(str(r["id"]), []).append(int(str(r["attempt"])))
    assert {job: seen for job, seen in attempts.items() if job in flaky} == {
        job: [1, 2, 3] for job in flaky
    }
    assert Counter(seen == [1] for job, seen in attempts.items() if job not in flaky) == {
        True: len(ids) - len(flaky)
    }
    assert set(finished(project)) == set(ids)
    assert app.driver().failed.count() == 0
    assert app.driver().size("default").total == 0


def test_async_and_sync_jobs_prefetched_together_each_count_every_attempt(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    """Eight ahead, async jobs among sync ones: an async job starts beside a sync job whose
    start is not counted yet, and each failing job must still see attempts 1, 2, 3."""
    app = default_app(project, server.url, use_app)
    jobs: list[Tick] = []
    for i in range(60):
        jobs.append([Tick, Flaky, AsyncFlaky][i % 3](n=i))
    ids = dispatch_many(jobs)
    env = worker_env(server.url)
    worker = both_executors.start(
        "--stop-when-empty", "--prefetch", "8", "--prefetch-hold", "30", env=env
    )
    assert worker.wait(60) == 0, worker.stderr()
    attempts: dict[str, list[int]] = {}
    for r in read_runs(project, "start"):
        attempts.setdefault(str(r["id"]), []).append(int(str(r["attempt"])))
    expected = {
        job_id: [1] if type(job) is Tick else [1, 2, 3]
        for job_id, job in zip(ids, jobs, strict=True)
    }
    assert attempts == expected
    assert set(finished(project)) == set(ids)
    assert app.driver().failed.count() == 0
    assert app.driver().size("default").total == 0


@pytest.mark.parametrize("doomed", [Crash, Hang], ids=["executor-dies", "timeout-kill"])
def test_a_job_queued_behind_one_whose_executor_is_lost_runs_once_as_its_first_attempt(
    project: Path,
    server: RedisServer,
    both_executors: Workers,
    use_app: list[Conveyor],
    doomed: type[Tick],
) -> None:
    """The queued job goes down with the executor's pipe, unstarted: the worker starts it
    again on the new executor, uncounted, and it runs exactly once."""
    app = default_app(project, server.url, use_app)
    lost, quick = dispatch_many([doomed(n=0), Tick(n=1)])
    env = worker_env(server.url)
    worker = both_executors.start("--stop-when-empty", "--prefetch-hold", "30", env=env)
    assert worker.wait(30) == 0, worker.stderr()
    assert [r["attempt"] for r in started(project, lost)] == [1]
    assert finished(project)[lost] == 0
    (run,) = started(project, quick)
    assert run["attempt"] == 1 and run["worker"] == worker.pid
    assert finished(project)[quick] == 1
    assert [r.uuid for r in app.driver().failed.page()] == [lost]
    assert app.driver().size("default").total == 0


def test_a_queued_job_s_timeout_counts_from_its_start_not_from_its_queueing(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    """A job with a short timeout waits queued behind a 1 s sync job, with an async job
    beside: were its clock started when it was queued (or when the async job's outcome is
    read), its timeout would expire in the queue and take the executor, and the sync job with
    it."""
    app = default_app(project, server.url, use_app)
    ids = dispatch_many([AsyncNap(n=0, seconds=0.0), SlowTick(n=1, seconds=1.0), Brief(n=2)])
    env = worker_env(server.url)
    worker = both_executors.start("--stop-when-empty", "--prefetch-hold", "30", env=env)
    assert worker.wait(30) == 0, worker.stderr()
    nap, slow, brief = (started(project, job_id) for job_id in ids)
    assert nap[0]["t"] < slow[0]["t"] < brief[0]["t"], "the order the test relies on"
    assert finished(project) == {job_id: 1 for job_id in ids}
    assert app.driver().failed.count() == 0
    assert [r["attempt"] for r in brief] == [1]


def script_calls(server: RedisServer) -> int:
    stats = server.client().info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0))


def test_one_round_trip_acknowledges_and_tops_up_about_half_the_queue(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    """With sixteen queued, the acknowledgements wait while eight or more are left: draining
    160 short jobs takes about 20 script calls besides the worker's own bookkeeping, where one
    round trip per job or two would take 80 to 160."""
    app = default_app(project, server.url, use_app)
    ids = dispatch_many([Tick(n=i, seconds=0.001) for i in range(160)])
    before = script_calls(server)
    env = worker_env(server.url)
    worker = both_executors.start("--stop-when-empty", "--prefetch", "16", env=env)
    assert worker.wait(60) == 0, worker.stderr()
    assert finished(project) == {job_id: 1 for job_id in ids}
    assert app.driver().size("default").total == 0
    calls = script_calls(server) - before
    assert calls <= 40, f"{calls} script calls for 160 jobs"


def test_a_finished_job_is_acknowledged_while_the_job_after_it_runs_long(
    project: Path, server: RedisServer, both_executors: Workers, use_app: list[Conveyor]
) -> None:
    """Acknowledgements kept for a later round trip go out as soon as a job runs long, not
    when it ends: were the worker killed meanwhile, the finished jobs would run again. The
    slow job starts with twelve queued behind it, enough to keep the acknowledgements of the
    four before it waiting if nothing sent them."""
    app = default_app(project, server.url, use_app)
    jobs = dispatch_many(
        [*(Tick(n=i) for i in range(4)), SlowTick(n=4, seconds=8.0),
         *(Tick(n=i) for i in range(5, 17))]
    )  # fmt: skip
    before, slow = jobs[:4], jobs[4]
    env = worker_env(server.url)
    worker = both_executors.start("--prefetch", "16", "--prefetch-hold", "30", env=env)
    wait_until(lambda: started(project, slow), 20, "the slow job to start")
    assert all(finished(project)[job_id] == 1 for job_id in before)
    # the slow job and the twelve queued behind it; the four finished ones acknowledged
    wait_until(lambda: reserved(app) == 13, 5, "the finished jobs to be acknowledged")
    assert finished(project)[slow] == 0, "acknowledged only when the slow job ended"
    worker.kill()
