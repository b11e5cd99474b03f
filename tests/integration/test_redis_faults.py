"""Real ``conveyor work`` processes on a private Redis, against what breaks in production:
workers SIGKILLed mid-job, the server restarted mid-run, connections killed from the server
side, and dispatch while the server is down.

Every job logs its start and end to a file outside Redis (``redis_jobs.py``), so each test can
count executions per job id: nothing may be lost, and a job may run twice only if it was in
flight where something was killed. Workers run with ``--tries 1`` (the default), so an attempt
spent by a broken connection would show up as a failed job.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import ConnectionUnavailable, Conveyor, PendingDispatch, dispatch_many, set_app
from conveyor.config import load_settings

from .harness import WorkerProcess, Workers, wait_until
from .redis_jobs import SlowTick, Tick, finished, read_runs
from .redis_server import RedisServer, require_redis_binary

N = 1500
LEASE = "2"
#: the restart test's lease outlasts the outage, so no job in flight is claimed a second time
RESTART_LEASE = "4"
pytestmark = pytest.mark.slow


def start_server(folder: Path, *args: str) -> RedisServer:
    require_redis_binary()
    return RedisServer(folder / "redis", *args).start()


@pytest.fixture
def server(project: Path) -> Iterator[RedisServer]:
    started = start_server(project)
    try:
        yield started
    finally:
        started.stop()


def connect(project: Path, url: str) -> Conveyor:
    return Conveyor(load_settings(project, env={"CONVEYOR_CONNECTION": url}))


@pytest.fixture
def use_app() -> Iterator[list[Conveyor]]:
    """Apps made by a test become the default for ``dispatch`` and are closed after it."""
    made: list[Conveyor] = []
    previous = set_app(None)
    try:
        yield made
    finally:
        set_app(previous)
        for app in made:
            app.close()


def default_app(project: Path, url: str, made: list[Conveyor]) -> Conveyor:
    app = connect(project, url)
    made.append(app)
    set_app(app)
    return app


def worker_env(url: str) -> dict[str, str]:
    return {"CONVEYOR_CONNECTION": url, "CONVEYOR_APP": "tests.integration.redis_jobs"}


def started_twice(project: Path) -> set[str]:
    starts = Counter(r["id"] for r in read_runs(project, "start"))
    return {job for job, n in starts.items() if n > 1}


def assert_all_done_once_settled(app: Conveyor, project: Path, ids: list[str]) -> None:
    """Every job ended at least once, the queue is empty, and nothing was failed."""
    wait_until(lambda: set(finished(project)) >= set(ids), 30, "every job to finish")
    wait_until(lambda: app.driver().size("default").total == 0, 10, "the queue to empty")
    assert app.driver().failed.count() == 0


def assert_alive(crew: list[WorkerProcess]) -> None:
    for worker in crew:
        assert worker.alive(), f"worker {worker.pid} exited:\n{worker.stderr()}"
        assert " FAILED" not in worker.stderr()


def test_sigkill_of_workers_mid_job_loses_nothing_and_reruns_only_their_jobs(
    project: Path, server: RedisServer, workers: Workers, use_app: list[Conveyor]
) -> None:
    app = default_app(project, server.url, use_app)
    slow = dispatch_many(PendingDispatch(SlowTick(n=-i)).on_queue("slow") for i in (1, 2))
    ids = dispatch_many(Tick(n=i) for i in range(N))
    env = worker_env(server.url)
    crew = workers.start_many(2, "--lease", LEASE, env=env)

    def running(worker: WorkerProcess) -> list[str]:
        return [r["id"] for r in read_runs(project, "start") if r["worker"] == worker.pid]

    # one after the other: a victim may prefetch the other slow job, uncounted, and hands it
    # back once its own has run longer than a prefetch is held
    victims: list[WorkerProcess] = []
    for _ in slow:
        victims.append(workers.start("--lease", LEASE, "--queue", "slow,default", env=env))
        wait_until(lambda v=victims[-1]: running(v), 20, "a victim to start its slow job")  # type: ignore[misc]
    killed_at: dict[str, float] = {}
    for victim in victims:
        victim.kill()
        killed_at[running(victim)[0]] = time.time()
    assert set(killed_at) == set(slow)
    assert len(finished(project)) < N, "the kills must land mid-run"
    crew.append(workers.start("--lease", LEASE, "--queue", "slow,default", env=env))

    assert_all_done_once_settled(app, project, [*ids, *slow])
    assert started_twice(project) == set(slow), "only the killed workers' jobs run twice"
    for job, at in killed_at.items():
        (rerun,) = [r for r in read_runs(project, "start") if r["id"] == job and r["attempt"] == 2]
        assert rerun["worker"] not in {v.pid for v in victims}
        assert at < rerun["t"] < at + float(LEASE) + 5, "back within lease + sweep"
        assert finished(project)[job] == 1
    assert_alive(crew)


@pytest.mark.parametrize(
    ("persistence", "stop_with"),
    [
        (("--appendonly", "yes"), signal.SIGTERM),
        (("--appendonly", "yes", "--appendfsync", "always"), signal.SIGKILL),
    ],
    ids=["aof-everysec-clean-restart", "aof-always-crash"],
)
def test_server_restart_mid_run_loses_nothing_and_no_worker_exits(
    project: Path, workers: Workers, use_app: list[Conveyor],
    persistence: tuple[str, ...], stop_with: signal.Signals,
) -> None:  # fmt: skip
    server = start_server(project, *persistence)
    try:
        app = default_app(project, server.url, use_app)
        ids = dispatch_many(Tick(n=i) for i in range(N))
        crew = workers.start_many(3, "--lease", RESTART_LEASE, env=worker_env(server.url))
        wait_until(lambda: len(finished(project)) >= N // 4, 20, "a quarter of the jobs to run")
        server.stop(stop_with)
        down_at = time.monotonic()
        assert_dispatch_fails_fast(project, server, use_app)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - down_at)))
        done_while_down = len(finished(project))
        assert done_while_down < N, "the restart must land mid-run"

        server.start()
        wait_until(
            lambda: len(finished(project)) > done_while_down, 10, "consumption to resume in 10 s"
        )
        assert_all_done_once_settled(app, project, ids)
        assert len(started_twice(project)) <= len(crew), "only jobs in flight may run twice"
        assert_alive(crew)
    finally:
        server.stop()


def assert_dispatch_fails_fast(project: Path, server: RedisServer, made: list[Conveyor]) -> None:
    """While the server is down, dispatch raises within its retry window and returns no id."""
    impatient = connect(project, f"{server.url}?retry_window=1")
    made.append(impatient)
    started = time.monotonic()
    with pytest.raises(ConnectionUnavailable, match="unavailable"):
        PendingDispatch(Tick(n=-1), impatient).dispatch()
    assert time.monotonic() - started < 1 + 3


def test_connections_killed_by_the_server_fail_no_job(
    project: Path, server: RedisServer, workers: Workers, use_app: list[Conveyor]
) -> None:
    app = default_app(project, server.url, use_app)
    n = 4 * N  # three workers run N such jobs in well under the second the kills take
    ids = dispatch_many(Tick(n=i) for i in range(n))
    crew = workers.start_many(3, "--lease", LEASE, env=worker_env(server.url))
    wait_until(lambda: len(finished(project)) >= n // 10, 20, "a tenth of the jobs to run")
    dropped = 0
    with server.client() as admin:
        for _ in range(5):
            dropped += int(admin.client_kill_filter(_type="normal", skipme=True))
            time.sleep(0.2)
    assert dropped >= 5 * len(crew), "every worker's connection was dropped each time"
    assert len(finished(project)) < n, "the kills must land mid-run"

    assert_all_done_once_settled(app, project, ids)
    assert started_twice(project) == set(), "no job was claimed twice"
    assert_alive(crew)


#: the late-acknowledgement test: a lease shorter than the outage, so every lease held when
#: Redis dies runs out before it is back
LATE_LEASE = 3.0
OUTAGE = LATE_LEASE + 1.0


def test_jobs_finished_during_an_outage_longer_than_a_lease_do_not_run_again(
    project: Path, workers: Workers, use_app: list[Conveyor]
) -> None:
    """Workers finish jobs while Redis is down; when it is back, other workers' claims sweep
    the expired leases back to the pending list before the late acknowledgements arrive. Their
    tokens still hold the jobs (nobody claimed them since), so the acknowledgements are taken
    and the jobs run once."""
    server = start_server(project, "--appendonly", "yes", "--appendfsync", "always")
    try:
        app = default_app(project, server.url, use_app)
        n = 600  # a backlog: the claims after the restart take the head, the swept jobs wait
        ids = dispatch_many(Tick(n=i, seconds=0.1) for i in range(n))
        crew = workers.start_many(
            8, "--lease", str(LATE_LEASE), "--concurrency", "1", env=worker_env(server.url)
        )
        wait_until(lambda: len(finished(project)) >= 40, 20, "the workers to get going")
        server.stop(signal.SIGKILL)
        down_at = time.time()
        time.sleep(OUTAGE)
        server.start()
        up_at = time.time()

        assert_all_done_once_settled(app, project, ids)
        during = {r["id"] for r in read_runs(project, "end") if down_at < r["t"] < up_at}
        assert during, "jobs must finish while Redis is down"
        assert started_twice(project) & during == set(), "a job finished meanwhile ran again"
        assert max(finished(project).values()) == 1
        assert_alive(crew)
    finally:
        server.stop()
