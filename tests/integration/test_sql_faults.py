"""Real workers on PostgreSQL and MariaDB through SIGKILL, server-side kills and a restart.

Several ``conveyor work`` processes drain a few thousand short ``Tally`` jobs, each of which
records every execution (with the worker that ran it) to a file. What must hold: nothing is
lost, a job runs twice only if it was in flight on a worker that died, no job is failed because
the queue's connection broke, and no worker exits because of the server.

SIGKILL and connection kills run on the machine's servers in a schema / database of their own;
the restart runs on a throwaway server the test starts in a temp folder (see ``sql_servers``).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from conveyor import ConnectionUnavailable, Conveyor, dispatch_many
from conveyor.config import load_settings
from tests.contract.backends import mysql as my_backend
from tests.contract.backends import postgres as pg_backend
from tests.servers import POSTGRES_URL

from .harness import WorkerProcess, Workers, wait_until
from .sql_jobs import Entry, Once, Tally, read_tally
from .sql_servers import ThrowawayMariaDB, ThrowawayPostgres, Unavailable

pytestmark = pytest.mark.slow
JOBS = "tests.integration.sql_jobs"
LEASE = 2.0


@dataclass
class Backend:
    name: str
    url: str
    #: kill every session of this test's workers from the server side; returns how many
    kill_sessions: Callable[[], int]


@pytest.fixture(params=["postgres", "mysql"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "postgres":
        pg_backend.require_postgres()
        schema = pg_backend.new_schema()

        def terminate() -> int:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                return len(
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = %s",
                        (schema,),
                    ).fetchall()
                )

        yield Backend("postgres", pg_backend.schema_url(schema, application_name=schema), terminate)
        pg_backend.drop_schema(schema)
        return
    my_backend.require_mysql()
    name = my_backend.new_database()

    def kill() -> int:
        with my_backend.admin() as admin, admin.cursor() as cur:
            cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (name,))
            sessions = [row[0] for row in cur.fetchall()]
            for session in sessions:
                cur.execute(f"KILL {int(session)}")
        return len(sessions)

    yield Backend("mysql", my_backend.database_url(name), kill)
    my_backend.drop_database(name)


def dispatcher(project: Path, url: str) -> Conveyor:
    return Conveyor(load_settings(project, env={"CONVEYOR_CONNECTION": url}))


def start_workers(workers: Workers, count: int, url: str) -> list[WorkerProcess]:
    env = {"CONVEYOR_CONNECTION": url, "CONVEYOR_APP": JOBS}
    return workers.start_many(count, "--lease", f"{LEASE:g}", "--sleep", "1", env=env)


def dispatch_tallies(
    app: Conveyor, count: int, seconds: float, job: type[Tally] = Tally
) -> list[str]:
    return dispatch_many(job(n=i, seconds=seconds).pending().using(app) for i in range(count))


def started(project: Path) -> list[Entry]:
    return [e for e in read_tally(project) if e.event == "start"]


def wait_all_done(project: Path, ids: list[str], timeout: float) -> list[Entry]:
    wanted = set(ids)

    def finished() -> list[Entry] | None:
        entries = read_tally(project)
        return entries if wanted <= {e.job_id for e in entries if e.event == "done"} else None

    return wait_until(finished, timeout, f"all {len(ids)} jobs to finish", interval=0.2)


def duplicates(entries: list[Entry]) -> set[str]:
    runs = Counter(e.job_id for e in entries if e.event == "start")
    return {job for job, count in runs.items() if count > 1}


def last_started(
    entries: list[Entry], pids: set[int], depth: int, before: float = float("inf")
) -> set[str]:
    """Per worker, the jobs it started last (before ``before``) that may not be acknowledged:
    the one it may have in flight, the one before it, whose acknowledgement travels in the
    same round trip as the start of the next (a prefetched job starts first), and with
    ``depth`` jobs prefetched, up to ``depth // 2`` more whose acknowledgements wait for the
    next round trip (``Worker._defer``)."""
    keep = depth // 2 + 2
    last: dict[int, list[str]] = {}
    for e in entries:
        if e.event == "start" and e.worker in pids and e.t < before:
            last[e.worker] = [*last.get(e.worker, [])[1 - keep :], e.job_id]
    return {job for jobs in last.values() for job in jobs}


def _depth(app: Conveyor) -> int:
    return int(getattr(app.driver(), "prefetch_depth", 1))


def stop_cleanly(pool: list[WorkerProcess]) -> None:
    for worker in pool:
        assert worker.alive(), f"worker exited early:\n{worker.stderr()[-3000:]}"
        worker.send(signal.SIGTERM)
    for worker in pool:
        assert worker.wait(15) == 0


def assert_settled(app: Conveyor) -> None:
    driver = app.driver()
    wait_until(lambda: driver.size("default").total == 0, 10, "the queue to be empty")
    assert driver.failed.count(None) == 0, [r.exception for r in driver.failed.page()]


def test_sigkill_of_workers_mid_run_loses_nothing(
    backend: Backend, project: Path, workers: Workers
) -> None:
    app = dispatcher(project, backend.url)
    ids = dispatch_tallies(app, 2000, seconds=0.002)
    pool = start_workers(workers, 3, backend.url)
    wait_until(lambda: len(started(project)) >= 300, 30, "300 jobs to start")
    victims = pool[:2]
    for worker in victims:
        worker.kill()
    killed_at = time.time()
    pool = [pool[2], *start_workers(workers, 2, backend.url)]

    entries = wait_all_done(project, ids, 60)
    assert_settled(app)
    dead = {w.pid for w in victims}
    in_flight = last_started(entries, dead, _depth(app))
    assert duplicates(entries) <= in_flight
    for job in in_flight:
        finished_by_victim = any(
            e.event == "done" and e.job_id == job and e.worker in dead for e in entries
        )
        reruns = [
            e for e in entries if e.event == "start" and e.job_id == job and e.worker not in dead
        ]
        if not finished_by_victim:
            assert reruns, f"job {job} in flight on a killed worker never ran again"
            assert reruns[0].t - killed_at < LEASE + 5.0, "re-run long after the lease ran out"
    stop_cleanly(pool)
    app.close()


def test_connections_killed_by_the_server_fail_no_job(
    backend: Backend, project: Path, workers: Workers
) -> None:
    app = dispatcher(project, backend.url)
    ids = dispatch_tallies(app, 1500, seconds=0.002, job=Once)
    pool = start_workers(workers, 3, backend.url)
    wait_until(lambda: len(started(project)) >= 200, 30, "200 jobs to start")
    killed = []
    for _ in range(4):
        killed.append(backend.kill_sessions())
        time.sleep(0.6)
    assert killed[0] >= 3, f"expected every worker's session to be killed, got {killed}"
    wait_until(lambda: len(started(project)) >= 600, 30, "work to resume after the kills")
    killed.append(backend.kill_sessions())

    wait_all_done(project, ids, 60)
    assert_settled(app)
    stop_cleanly(pool)
    app.close()


@pytest.fixture(params=["postgres", "mysql"])
def throwaway(request: pytest.FixtureRequest) -> Iterator[ThrowawayPostgres | ThrowawayMariaDB]:
    try:
        server: ThrowawayPostgres | ThrowawayMariaDB = (
            ThrowawayPostgres() if request.param == "postgres" else ThrowawayMariaDB()
        )
        server.start()
    except Unavailable as exc:
        pytest.skip(f"cannot start a throwaway {request.param} server to restart: {exc}")
    try:
        yield server
    finally:
        server.close()


def test_server_restart_mid_run_loses_nothing_and_workers_resume(
    throwaway: ThrowawayPostgres | ThrowawayMariaDB, project: Path, workers: Workers
) -> None:
    url = throwaway.url
    app = dispatcher(project, url)
    ids = dispatch_tallies(app, 1000, seconds=0.003)
    pool = start_workers(workers, 3, url)
    wait_until(lambda: len(started(project)) >= 200, 30, "200 jobs to start")

    throwaway.stop()
    stopped_at = time.time()
    _dispatch_while_down_fails_fast(project, url)
    time.sleep(1.0)
    throwaway.start()
    back_at = time.time()
    wait_until(
        lambda: any(e.t > back_at for e in started(project)), 10,
        "consumption to resume within 10 s of the server coming back",
    )  # fmt: skip

    entries = wait_all_done(project, ids, 60)
    assert_settled(app)
    assert not [e for e in entries if e.n < 0], "a job dispatched while down was stored"
    in_flight = last_started(entries, {w.pid for w in pool}, _depth(app), before=stopped_at)
    assert duplicates(entries) <= in_flight
    stop_cleanly(pool)
    app.close()


def _dispatch_while_down_fails_fast(project: Path, url: str) -> None:
    """Raises ConnectionUnavailable within its retry window, and returns no job id."""
    option = "&retry_window=1" if "?" in url else "?retry_window=1"
    down = dispatcher(project, url + option)
    began = time.monotonic()
    with pytest.raises(ConnectionUnavailable):
        Tally(n=-1).pending().using(down).dispatch()
    assert time.monotonic() - began < 8.0
    down.close()
