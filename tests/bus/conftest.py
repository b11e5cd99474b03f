"""Fixtures for the bus tests: an app on each backend (its own file, schema, database or key
prefix), and a worker that drains it in this process."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, set_app
from conveyor.config import load_settings
from conveyor.worker.executor import WorkerDefaults
from conveyor.worker.loop import Worker, WorkerOptions
from conveyor.worker.process import InlineRunner

BACKENDS = ["sqlite", "postgres", "mysql", "redis"]


def _server_url(backend: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(url, key prefix) of a fresh, private place on the backend's server; removed after."""
    prefix = f"bus-{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        from tests.contract.backends import postgres as pg

        pg.require_postgres()
        schema = pg.new_schema()
        request.addfinalizer(lambda: pg.drop_schema(schema))
        return pg.schema_url(schema), prefix
    if backend == "mysql":
        from tests.contract.backends import mysql as my

        my.require_mysql()
        name = my.new_database()
        request.addfinalizer(lambda: my.drop_database(name))
        return my.database_url(name), prefix
    from tests.contract.backends import redis as rd
    from tests.servers import REDIS_URL

    rd.require_redis()

    def cleanup() -> None:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        rd.delete_prefix(client, prefix)
        client.close()

    request.addfinalizer(cleanup)
    return REDIS_URL, prefix


def configure(
    project: Path, backend: str, request: pytest.FixtureRequest, max_payload: int | None = None
) -> Conveyor:
    """Write the project's conveyor.toml for ``backend`` (workers started there read it too),
    with the jobs and callbacks of ``tests.bus.jobs`` as its app (and ``max_payload``)."""
    if backend == "sqlite":
        url, prefix = f"sqlite:///{project / 'bus.db'}", "conveyor"
    else:
        url, prefix = _server_url(backend, request)
    limit = f"max_payload = {max_payload}\n" if max_payload else ""
    (project / "conveyor.toml").write_text(
        f'{limit}app = ["tests.bus.jobs"]\ndefault = "bus"\n\n'
        f'[connections.bus]\nurl = "{url}"\nprefix = "{prefix}"\nretry_after = 2\n'
    )
    return Conveyor(load_settings(project, env={}))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bus_app(project: Path, backend: str, request: pytest.FixtureRequest) -> Iterator[Conveyor]:
    app = configure(project, backend, request)
    previous = set_app(app)
    try:
        yield app
    finally:
        set_app(previous)
        app.close()


@pytest.fixture
def sqlite_app(project: Path, request: pytest.FixtureRequest) -> Iterator[Conveyor]:
    app = configure(project, "sqlite", request)
    previous = set_app(app)
    try:
        yield app
    finally:
        set_app(previous)
        app.close()


def drain_with(app: Conveyor, *queues: str, max_jobs: int = 0) -> int:
    """Run a worker in this process until no job is left (or ``max_jobs``); jobs processed."""
    options = WorkerOptions(
        queues=queues or ("default",), stop_when_empty=True, lease=5.0, max_jobs=max_jobs
    )
    worker = Worker(
        app.driver(), InlineRunner(app.executor()), app.events, WorkerDefaults(), options
    )
    worker.run()
    return worker.processed


@pytest.fixture
def drain() -> Callable[..., int]:
    return drain_with
