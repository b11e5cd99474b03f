"""Batch bookkeeping cost: dispatch time and round trips of a big batch, and drain rate of a batch
versus the same number of plain jobs, one worker (prefork, the default), per backend.

    python bench/bus.py                      # every backend whose server answers, 10,000 jobs
    python bench/bus.py --backends sqlite --jobs 2000

Round trips are counted where the driver talks to its server: one transaction of the SQL
driver (``DatabaseDriver.run``) or one Redis call (``RedisConnection.run``) each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the servers' helpers

from conveyor import Conveyor, Job, batch, dispatch_many, set_app
from conveyor.config import load_settings
from conveyor.worker.executor import WorkerDefaults
from conveyor.worker.loop import Worker, WorkerOptions
from conveyor.worker.process import ChildRunner


class Noop(Job):
    n: int
    work: float = 0.0

    def handle(self) -> None:
        if self.work:
            time.sleep(self.work)


def _url(backend: str, folder: Path) -> tuple[str, Callable[[], None]]:
    """A private place on the backend's server, and how to remove it."""
    if backend == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    if backend == "postgres":
        from tests.contract.backends import postgres as pg

        schema = pg.new_schema()
        return pg.schema_url(schema), lambda: pg.drop_schema(schema)
    if backend == "mysql":
        from tests.contract.backends import mysql as my

        name = my.new_database()
        return my.database_url(name), lambda: my.drop_database(name)
    from tests.servers import REDIS_URL

    return REDIS_URL, lambda: None


@contextmanager
def app_on(backend: str) -> Iterator[Conveyor]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url, cleanup = _url(backend, folder)
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        (folder / "conveyor.toml").write_text(
            f'default = "b"\n[connections.b]\nurl = "{url}"\nprefix = "{prefix}"\n'
        )
        app = Conveyor(load_settings(folder, env={}))
        set_app(app)
        try:
            yield app
        finally:
            if backend == "redis":
                import redis
                from tests.contract.backends.redis import delete_prefix

                delete_prefix(redis.Redis.from_url(url), prefix)
            app.close()
            cleanup()


@contextmanager
def counting(app: Conveyor) -> Iterator[list[int]]:
    """Count the driver's round trips to its server while the block runs."""
    driver: Any = app.driver()
    owner = driver.conn if hasattr(driver, "conn") else driver
    original = owner.run
    calls = [0]

    def run(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    owner.run = run
    try:
        yield calls
    finally:
        owner.run = original


def drain(app: Conveyor) -> float:
    options = WorkerOptions(stop_when_empty=True, lease=30.0)
    runner = ChildRunner(lambda: app.executor(WorkerDefaults()), None)
    worker = Worker(app.driver(), runner, app.events, WorkerDefaults(), options)
    started = time.perf_counter()
    worker.run()
    return time.perf_counter() - started


def measure(backend: str, jobs: int, work: float) -> dict[str, float]:
    with app_on(backend) as app:
        app.driver().size("default")  # connect (and migrate) before timing
        pending = batch([Noop(n=i, work=work) for i in range(jobs)]).name("bench")
        with counting(app) as calls:
            started = time.perf_counter()
            pending.dispatch()
            dispatch_time = time.perf_counter() - started
        batch_drain = drain(app)
        dispatch_many([Noop(n=i, work=work) for i in range(jobs)])
        plain_drain = drain(app)
    return {
        "dispatch_s": dispatch_time, "round_trips": calls[0],
        "plain_rate": jobs / plain_drain, "batch_rate": jobs / batch_drain,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres,mysql,redis")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--work-ms", type=float, default=0.0, help="each job sleeps this long")
    args = parser.parse_args()
    print(
        f"{'backend':<9} {'dispatch':>9} {'trips':>6} {'plain/s':>8} {'batch/s':>8} {'overhead':>8}"
    )
    for backend in args.backends.split(","):
        r = measure(backend, args.jobs, args.work_ms / 1000)
        overhead = (r["plain_rate"] / r["batch_rate"] - 1) * 100
        print(
            f"{backend:<9} {r['dispatch_s'] * 1000:>7.0f}ms {r['round_trips']:>6.0f}"
            f" {r['plain_rate']:>8.0f} {r['batch_rate']:>8.0f} {overhead:>7.1f}%"
        )


if __name__ == "__main__":
    main()
