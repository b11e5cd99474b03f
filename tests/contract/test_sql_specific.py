"""What the PostgreSQL and MariaDB/MySQL dialects promise beyond the shared contract.

Each test opens its own drivers on a fresh schema (PostgreSQL) or database (MariaDB), so several
connections can race on the same tables the way workers on many machines do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from conveyor.config import ConnectionSettings
from conveyor.drivers.base import Driver, Message
from conveyor.drivers.database.driver import DatabaseDriver
from conveyor.drivers.database.mysql import (
    MySQLDialect,
    check_version,
    open_mysql,
    server_flavor,
)
from conveyor.drivers.database.mysql import parse_url as parse_mysql_url
from conveyor.drivers.database.postgres import open_postgres
from conveyor.drivers.database.postgres import parse_url as parse_pg_url
from conveyor.drivers.database.schema import MIGRATIONS
from conveyor.errors import ConfigError, ConnectionUnavailable
from tests.contract.backends import mysql as my_backend
from tests.contract.backends import postgres as pg_backend
from tests.servers import MYSQL_URL, POSTGRES_URL

_INDEXES = sum(s.startswith("CREATE INDEX") for _, stmts in MIGRATIONS for s in stmts)


class Opener:
    """``opener(**url_options)`` opens another driver on this test's own schema / database."""

    def __init__(self, backend: str, make: Callable[..., Driver]) -> None:
        self.backend = backend
        self._make = make
        self.opened: list[Driver] = []

    def __call__(self, **options: str) -> Driver:
        driver = self._make(**options)
        self.opened.append(driver)
        return driver


@pytest.fixture(params=["postgres", "mysql"])
def opener(request: pytest.FixtureRequest) -> Iterator[Opener]:
    if request.param == "postgres":
        pg_backend.require_postgres()
        schema = pg_backend.new_schema()

        def make_pg(**options: str) -> Driver:
            url = pg_backend.schema_url(schema, application_name=schema, **options)
            return open_postgres(ConnectionSettings("sql", url))

        opener, cleanup = Opener("postgres", make_pg), lambda: pg_backend.drop_schema(schema)
    else:
        my_backend.require_mysql()
        name = my_backend.new_database()

        def make_my(**options: str) -> Driver:
            return open_mysql(ConnectionSettings("sql", my_backend.database_url(name, **options)))

        opener, cleanup = Opener("mysql", make_my), lambda: my_backend.drop_database(name)
    try:
        yield opener
    finally:
        for driver in opener.opened:
            driver.close()
        cleanup()


def _messages(n: int, queue: str = "default") -> list[Message]:
    return [Message(f"job-{i:05d}", queue, b'{"n": %d}' % i) for i in range(n)]


def test_concurrent_claimers_never_get_the_same_job(opener: Opener) -> None:
    opener().push_many(_messages(300))
    drivers = [opener() for _ in range(6)]
    claimed: list[list[str]] = [[] for _ in drivers]
    start = threading.Barrier(len(drivers))

    def drain(i: int) -> None:
        start.wait()
        while (found := drivers[i].reserve(["default"], lease=60)) is not None:
            claimed[i].append(found.id)

    with ThreadPoolExecutor(len(drivers)) as pool:
        list(pool.map(drain, range(len(drivers))))
    everything = [job for ids in claimed for job in ids]
    assert len(everything) == 300
    assert len(set(everything)) == 300
    assert sum(1 for ids in claimed if ids) > 1, "one connection claimed everything"


def test_workers_starting_together_on_a_fresh_database_migrate_once(opener: Opener) -> None:
    drivers = [opener() for _ in range(5)]
    start = threading.Barrier(len(drivers))

    def first_use(i: int) -> None:
        start.wait()
        drivers[i].push(Message(f"first-{i}", "default", b"{}"))

    with ThreadPoolExecutor(len(drivers)) as pool:
        list(pool.map(first_use, range(len(drivers))))
    assert drivers[0].size("default").pending == 5

    def versions(cur: Any) -> list[Any]:
        cur.execute("SELECT version FROM conveyor_migrations")
        return [row[0] for row in cur.fetchall()]

    driver = drivers[0]
    assert isinstance(driver, DatabaseDriver)
    assert sorted(driver.run(versions, write=False)) == [v for v, _ in MIGRATIONS]


def test_a_database_migrated_before_prefetch_is_upgraded_and_keeps_the_old_routine(
    opener: Opener,
) -> None:
    """Migration 5 adds ``conveyor_step`` to a database at version 4, and keeps
    ``conveyor_take`` for workers still running the previous release."""
    driver = opener()
    assert isinstance(driver, DatabaseDriver)
    driver.migrate()
    kind = "FUNCTION" if driver.dialect.name == "postgresql" else "PROCEDURE"
    driver.run(lambda cur: cur.execute(f"DROP {kind} conveyor_step"))
    driver.run(lambda cur: cur.execute("DELETE FROM conveyor_migrations WHERE version = 5"))
    upgraded = opener()
    upgraded.migrate()
    upgraded.push_many([Message("a", "default", b"{}"), Message("b", "default", b"{}")])
    _, (held,) = upgraded.ack_many_and_claim([], None, ["default"], 30, 1)
    assert held.attempts == 1
    old_call = (
        "SELECT acked, job_id FROM conveyor_take(ARRAY['default'], 30, 'old', NULL, NULL)"
        if kind == "FUNCTION"
        else "CALL conveyor_take('[\"default\"]', 30, 'old', NULL, NULL)"
    )

    def call_old(cur: Any) -> Any:
        cur.execute(old_call)
        return cur.fetchall()

    assert "b" in driver.run(call_old, write=False)[0]


def test_an_idle_reserve_wakes_when_another_connection_pushes(opener: Opener) -> None:
    waiting, pushing = opener(), opener()
    assert waiting.reserve(["default"], lease=30, wait=0.2) is None  # now idle, listening
    result: dict[str, Any] = {}

    def wait() -> None:
        started = time.monotonic()
        result["job"] = waiting.reserve(["default"], lease=30, wait=8.0)
        result["waited"] = time.monotonic() - started

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.3)
    pushing.push(Message("wake-up", "default", b"{}"))
    thread.join(10)
    assert result["job"] is not None and result["job"].id == "wake-up"
    assert result["waited"] < 6.0, "the waiting worker slept through the dispatch"


def _kill_sessions(backend: str, driver: Driver) -> int:
    """Kill, from the server side, every session of ``driver``'s schema / database."""
    assert isinstance(driver, DatabaseDriver)
    if backend == "postgres":
        schema = driver.dialect.schema  # type: ignore[attr-defined]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (schema,),
            ).fetchall()
        return len(rows)
    database = driver.dialect.options.database  # type: ignore[attr-defined]
    with my_backend.admin() as admin, admin.cursor() as cur:
        cur.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
        ids = [row[0] for row in cur.fetchall()]
        for session in ids:
            cur.execute(f"KILL {int(session)}")
    return len(ids)


def test_a_connection_killed_by_the_server_is_replaced_transparently(opener: Opener) -> None:
    driver = opener()
    driver.push(Message("before", "default", b"{}"))
    assert driver.reserve(["other"], lease=30, wait=0.1) is None  # opens the listener on PG
    assert _kill_sessions(opener.backend, driver) >= 1
    driver.push(Message("after", "default", b"{}"))
    found = driver.reserve(["default"], lease=30)
    assert found is not None and found.id == "before"
    assert found.ack()
    assert driver.size("default").pending == 1


def test_a_reservation_settles_after_its_connection_was_killed(opener: Opener) -> None:
    driver = opener()
    driver.push(Message("held", "default", b"{}"))
    found = driver.reserve(["default"], lease=30)
    assert found is not None
    _kill_sessions(opener.backend, driver)
    assert found.extend(30)
    assert found.release(0)
    again = driver.reserve(["default"], lease=30)
    assert again is not None and again.attempts == 2
    assert again.ack()
    assert driver.size("default").total == 0


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_dispatch_to_an_unreachable_server_fails_within_the_retry_window(scheme: str) -> None:
    if scheme == "postgresql":
        driver = open_postgres(
            ConnectionSettings("down", "postgresql://postgres@127.0.0.1:9/test?retry_window=0.5")
        )
    else:
        driver = open_mysql(
            ConnectionSettings("down", "mysql://root@127.0.0.1:9/test?retry_window=0.5")
        )
    started = time.monotonic()
    with pytest.raises(ConnectionUnavailable, match=r"127\.0\.0\.1"):
        driver.push(Message("lost", "default", b"{}"))
    assert time.monotonic() - started < 5.0
    driver.close()


@pytest.mark.parametrize(
    "version",
    ["5.7.44", "8.0.0", "5.5.5-10.5.22-MariaDB-1:10.5.22+maria~deb11", "10.4.1-MariaDB"],
)
def test_servers_without_skip_locked_are_refused_with_a_clear_message(version: str) -> None:
    with pytest.raises(ConfigError, match=r"too old.*SKIP LOCKED.*MariaDB 10\.6.*MySQL 8"):
        check_version(version)


@pytest.mark.parametrize(
    ("version", "flavor"),
    [("5.5.5-10.11.19-MariaDB-0+deb12u1", "mariadb"), ("10.6.0-MariaDB", "mariadb"),
     ("11.4.2-MariaDB", "mariadb"), ("8.0.36", "mysql"), ("8.4.0-commercial", "mysql")],
)  # fmt: skip
def test_supported_servers_are_recognised(version: str, flavor: str) -> None:
    assert check_version(version) == flavor
    assert server_flavor(version)[0] == flavor


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@h/db?schema=bad-name", "schema 'bad-name'"),
        ("postgresql://u@h/db?retry_window=soon", "retry_window must be a positive number"),
        ("mysql://root@127.0.0.1:3306", "must name a database"),
        ("mysql://root@h/db?colour=red", "unknown URL option 'colour'"),
        ("mysql://root@h/db?read_timeout=0", "read_timeout must be a positive number"),
        ("postgresql://u@h/db?auto_migrate=maybe", "auto_migrate must be true or false"),
        ("mysql://root@h/db?auto_migrate=maybe", "auto_migrate must be true or false"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    parse = parse_pg_url if url.startswith("postgresql") else parse_mysql_url
    with pytest.raises(ConfigError, match=message):
        parse(url)


def test_wrong_credentials_are_config_errors_not_retries() -> None:
    pg_backend.require_postgres()
    my_backend.require_mysql()
    pg = open_postgres(ConnectionSettings("x", POSTGRES_URL.replace("postgres@", "nobody@")))
    with pytest.raises(ConfigError, match="nobody"):
        pg.size("default")
    my = open_mysql(ConnectionSettings("x", MYSQL_URL.replace("root@", "nobody@")))
    with pytest.raises(ConfigError, match="nobody"):
        my.size("default")


class _MySQL8Dialect(MySQLDialect):
    """The MariaDB server, migrated the way a MySQL 8 server is (no CREATE INDEX IF NOT EXISTS)."""

    def connect(self) -> Any:
        conn = super().connect()
        self.flavor = "mysql"
        return conn


def test_mysql_flavoured_migration_is_idempotent_when_cut_short() -> None:
    my_backend.require_mysql()
    name = my_backend.new_database()
    try:
        options = parse_mysql_url(my_backend.database_url(name))
        driver = DatabaseDriver("m8", _MySQL8Dialect(options))
        driver.migrate()
        driver.run(lambda cur: cur.execute("DELETE FROM conveyor_migrations"))
        driver.migrate()  # tables and index exist, the version row does not: re-run cleanly
        driver.close()
        with my_backend.admin() as admin, admin.cursor() as cur:
            cur.execute(
                "SELECT COUNT(DISTINCT index_name) FROM information_schema.statistics"
                " WHERE table_schema = %s AND index_name LIKE 'conveyor_%%'",
                (name,),
            )
            assert cur.fetchone()[0] == _INDEXES
    finally:
        my_backend.drop_database(name)


def test_postgres_tables_live_in_the_configured_schema_only() -> None:
    pg_backend.require_postgres()
    schema = pg_backend.new_schema()
    try:
        driver = open_postgres(ConnectionSettings("s", pg_backend.schema_url(schema)))
        driver.push(Message("in-schema", "default", b"{}"))
        driver.close()
        with psycopg.connect(POSTGRES_URL) as admin:
            found = admin.execute(
                "SELECT table_schema FROM information_schema.tables WHERE table_name ="
                " 'conveyor_jobs' AND table_schema = %s",
                (schema,),
            ).fetchall()
        assert found == [(schema,)]
    finally:
        pg_backend.drop_schema(schema)


def test_mysql_bulk_dispatch_keeps_every_payload_intact() -> None:
    """A bulk dispatch is folded into multi-row INSERTs; every payload arrives intact."""
    my_backend.require_mysql()
    name = my_backend.new_database()
    try:
        driver = open_mysql(ConnectionSettings("bulk", my_backend.database_url(name)))
        payloads = [("é%s?" * (i % 7)).encode() + b"%d" % i for i in range(500)]
        driver.push_many([Message(f"b{i}", "bulk", p) for i, p in enumerate(payloads)])
        got = {}
        while (found := driver.reserve(["bulk"], lease=30)) is not None:
            got[found.id] = found.payload
            found.ack()
        driver.close()
        assert got == {f"b{i}": p for i, p in enumerate(payloads)}
    finally:
        my_backend.drop_database(name)


def test_a_push_retried_after_its_commit_went_through_is_not_an_error(opener: Opener) -> None:
    """The driver retries a push whose answer was lost; the rows it finds are its own."""
    driver = opener()
    message = Message("once", "default", b"{}")
    driver.push(message)
    driver.push_many([message, Message("twice", "default", b"{}")])
    assert driver.size("default").pending == 2


def test_a_claim_retried_with_its_token_gets_the_job_it_already_reserved(opener: Opener) -> None:
    """A claim that committed before its connection broke is handed over on the retry."""
    driver = opener()
    assert isinstance(driver, DatabaseDriver)
    driver.push_many(_messages(3))

    def claim_as(token: str) -> Any:
        def go(cur: Any) -> Any:
            conn = driver._connection()
            now = driver.dialect.now(conn)
            return driver.dialect.claim(conn, "default", now, now + 30, token)

        return driver.run(go)

    first = claim_as("token-a")
    assert claim_as("token-a") == first
    other = claim_as("token-b")
    assert other is not None and other[0] != first[0]
    assert driver.size("default").reserved == 2


def test_without_auto_migrate_only_migrate_creates_the_tables(opener: Opener) -> None:
    manual = opener(auto_migrate="false")
    assert isinstance(manual, DatabaseDriver)

    here = "current_schema()" if opener.backend == "postgres" else "DATABASE()"

    def tables(cur: Any) -> int:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'conveyor_jobs'"
            f" AND table_schema = {here}"
        )
        return int(cur.fetchone()[0])

    assert manual.run(tables, write=False) == 0
    for use in (
        lambda: manual.push(Message("before-migrate", "default", b"{}")),
        lambda: manual.reserve(["default"], lease=30),
    ):
        with pytest.raises(ConfigError, match="run `conveyor migrate`"):
            use()
    manual.migrate()
    assert manual.run(tables, write=False) == 1
    manual.push(Message("after-migrate", "default", b"{}"))
    assert manual.size("default").pending == 1
