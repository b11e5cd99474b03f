"""PostgreSQL workers vacuum ``conveyor_jobs`` from their heartbeat once dead rows pile up."""

from __future__ import annotations

import time
from typing import Any

import pytest

from conveyor.config import ConnectionSettings
from conveyor.drivers.base import Message, WorkerInfo
from conveyor.drivers.database.driver import DatabaseDriver
from conveyor.drivers.database.postgres import PostgresDialect, open_postgres
from conveyor.drivers.database.postgres_vacuum import DEAD_MIN
from conveyor.errors import ConfigError
from tests.contract.backends import postgres as pg_backend


def _driver(request: pytest.FixtureRequest, **options: str) -> DatabaseDriver:
    pg_backend.require_postgres()
    schema = pg_backend.new_schema()
    request.addfinalizer(lambda: pg_backend.drop_schema(schema))
    driver = open_postgres(ConnectionSettings("vacuum", pg_backend.schema_url(schema, **options)))
    assert isinstance(driver, DatabaseDriver)
    request.addfinalizer(driver.close)
    return driver


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> DatabaseDriver:
    return _driver(request)


def _leave_dead_rows(driver: DatabaseDriver, n: int) -> None:
    driver.push_many([Message(f"j{i}", "q", b"{}") for i in range(n)])
    driver.clear("q")
    driver._connection().raw.execute("SELECT pg_stat_force_next_flush()")


def _vacuums(driver: DatabaseDriver) -> int:
    raw: Any = driver._connection().raw
    row = raw.execute(
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'conveyor_jobs'::regclass"
    ).fetchone()
    return int(row[0])


def _beat(driver: DatabaseDriver) -> None:
    driver.heartbeat(WorkerInfo("w", "host", 1, ("q",), time.time(), time.time(), 0, None))
    dialect = driver.dialect
    assert isinstance(dialect, PostgresDialect)
    if dialect.vacuumer is not None:
        dialect.vacuumer.wait(30)


def test_a_heartbeat_vacuums_the_jobs_table_past_the_threshold_and_not_before(
    pg: DatabaseDriver,
) -> None:
    _leave_dead_rows(pg, DEAD_MIN // 2)
    _beat(pg)
    assert _vacuums(pg) == 0, "below the threshold the table is left to autovacuum"
    _leave_dead_rows(pg, DEAD_MIN)
    _beat(pg)
    assert _vacuums(pg) == 1
    _beat(pg)
    assert _vacuums(pg) == 1, "the vacuum removed the dead rows: nothing more to do"


def test_vacuum_false_leaves_the_table_to_autovacuum(request: pytest.FixtureRequest) -> None:
    driver = _driver(request, vacuum="false")
    _leave_dead_rows(driver, DEAD_MIN * 2)
    _beat(driver)
    assert _vacuums(driver) == 0


def test_a_bad_vacuum_option_is_refused_naming_it(request: pytest.FixtureRequest) -> None:
    with pytest.raises(ConfigError, match="vacuum must be true or false"):
        open_postgres(ConnectionSettings("bad", "postgresql://localhost/db?vacuum=maybe"))
