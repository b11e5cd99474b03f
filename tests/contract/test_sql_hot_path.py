"""The SQL worker's hot path: acknowledge-and-claim in one step, and which commits may skip the
disk flush. Runs on SQLite, PostgreSQL and MariaDB/MySQL (each test on a fresh schema/database).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conveyor.config import ConnectionSettings
from conveyor.drivers.base import Message
from conveyor.drivers.database import postgres
from conveyor.drivers.database.driver import DatabaseDriver
from conveyor.drivers.database.mysql import MySQLDialect, open_mysql, server_flavor
from conveyor.drivers.database.mysql import parse_url as parse_mysql_url
from conveyor.drivers.database.reservation import SQLReservation
from conveyor.errors import ConfigError
from tests.contract.backends import mysql as my_backend
from tests.contract.backends import postgres as pg_backend

LEASE = 30.0


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseDriver]:
    module = importlib.import_module(f"tests.contract.backends.{request.param}")
    driver = module.make(tmp_path, request)
    assert isinstance(driver, DatabaseDriver)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture
def pg(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DatabaseDriver]:
    driver = pg_backend.make(tmp_path, request)
    assert isinstance(driver, DatabaseDriver)
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(params=["postgres", "mysql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseDriver]:
    """A driver on a real server, whose dialect claims in one statement."""
    module = importlib.import_module(f"tests.contract.backends.{request.param}")
    driver = module.make(tmp_path, request)
    assert isinstance(driver, DatabaseDriver)
    try:
        yield driver
    finally:
        driver.close()


def _push(driver: DatabaseDriver, queue: str, *ids: str) -> None:
    driver.push_many([Message(i, queue, b'{"id": "%s"}' % i.encode()) for i in ids])


def _reserve(driver: DatabaseDriver, *queues: str) -> SQLReservation:
    found = driver.reserve(list(queues), LEASE)
    assert isinstance(found, SQLReservation)
    return found


def test_ack_and_reserve_settles_and_claims_from_the_first_non_empty_queue(
    sql: DatabaseDriver,
) -> None:
    _push(sql, "low", "low-1", "low-2")
    _push(sql, "high", "high-1")
    first = _reserve(sql, "high", "low")
    assert first.id == "high-1"
    acked, second = first.ack_and_reserve(["high", "low"], LEASE)
    assert acked and second is not None
    assert (second.id, second.queue, second.attempts) == ("low-1", "low", 1)
    assert second.payload == b'{"id": "low-1"}'
    _push(sql, "high", "high-2")  # a job in the higher queue overtakes the lower one
    acked, third = second.ack_and_reserve(["high", "low"], LEASE)
    assert acked and third is not None and third.id == "high-2"
    assert sql.size("high").total == 1 and sql.size("low").total == 1


def test_ack_and_reserve_with_nothing_left_acknowledges_and_returns_none(
    sql: DatabaseDriver,
) -> None:
    _push(sql, "only", "a")
    acked, claimed = _reserve(sql, "only").ack_and_reserve(["only"], LEASE)
    assert acked and claimed is None
    assert sql.size("only").total == 0


def test_ack_and_reserve_without_the_lease_deletes_nothing_but_still_claims(
    sql: DatabaseDriver,
) -> None:
    _push(sql, "q", "a", "b")
    mine = _reserve(sql, "q")
    stale = SQLReservation(sql, mine.id, mine.queue, mine.payload, mine.attempts, "not-my-token")
    acked, claimed = stale.ack_and_reserve(["q"], LEASE)
    assert not acked
    assert claimed is not None and claimed.id == "b"
    assert sql.size("q").reserved == 2  # the fenced-off job is still there for its owner
    assert mine.ack()


def test_a_take_retried_with_its_token_hands_over_the_job_it_claimed(
    server: DatabaseDriver,
) -> None:
    """A take that committed before its connection broke gives the same job on the retry."""
    _push(server, "q", "a", "b")
    taking = server._taking
    assert taking is not None

    def take(token: str) -> Any:
        conn = server._connection()
        return server.run(lambda cur: taking.take(conn, ["q"], LEASE, token), write=False)

    first = take("token-a")
    assert first[2] is not None
    assert take("token-a") == first
    other = take("token-b")
    assert other[2] is not None and other[2][1][0] != first[2][1][0]
    assert server.size("q").reserved == 2


def test_a_multi_claim_retried_with_its_token_hands_over_the_jobs_it_claimed(
    pg: DatabaseDriver,
) -> None:
    """The same for PostgreSQL's several-jobs step: the retry finds every claim by its token,
    in order, the first counted as the first call counted it."""
    _push(pg, "q", "a", "b", "c", "d")
    many = pg._taking_many
    assert many is not None

    def take(token: str, n: int) -> Any:
        def call(cur: Any) -> Any:
            return many.take_many(pg._connection(), ["q"], LEASE, token, [], None, n, True)

        return pg.run(call, write=False)

    first = take("token-a", 3)
    claims = [(claim[1][0], claim[1][2], own) for claim, own in first[2]]
    assert claims == [("a", 1, "token-a:0"), ("b", 1, "token-a:1"), ("c", 1, "token-a:2")]
    assert take("token-a", 3) == first
    assert [claim[1][0] for claim, _ in take("token-b", 3)[2]] == ["d"]
    stored = pg.run(lambda cur: cur.execute(
        "SELECT id, attempts FROM conveyor_jobs ORDER BY id").fetchall(), write=False)  # fmt: skip
    assert stored == [("a", 1), ("b", 0), ("c", 0), ("d", 1)]


def test_one_round_trip_claims_deep_only_where_one_statement_does_it(
    sql: DatabaseDriver,
) -> None:
    """PostgreSQL claims many jobs in one statement and so prefetches deep by default; SQLite
    and MariaDB/MySQL would need a statement per claim and keep one ahead."""
    deep = sql.dialect.name == "postgresql"
    assert sql.prefetch_depth == (DatabaseDriver.PREFETCH_DEPTH_MANY if deep else 1)
    assert DatabaseDriver.PREFETCH_DEPTH_MANY > 1


def _setting_inside(driver: DatabaseDriver, durable: bool) -> str:
    def read(cur: Any) -> str:
        cur.execute("SELECT current_setting('synchronous_commit')")
        return str(cur.fetchone()[0])

    return driver.run(read, durable=durable)


def test_worker_writes_skip_the_wal_flush_and_dispatches_wait_for_it(pg: DatabaseDriver) -> None:
    assert _setting_inside(pg, durable=True) == "on"
    assert _setting_inside(pg, durable=False) == "off"
    _push(pg, "q", "a")
    conn = pg._connection()
    assert isinstance(conn.raw, psycopg.Connection)  # type: ignore[attr-defined]
    raw: psycopg.Connection[Any] = conn.raw  # type: ignore[attr-defined]
    for call in (
        "SELECT * FROM conveyor_take(%s::text[], 30, 'tok')",
        "SELECT * FROM conveyor_step(%s::text[], 30, 'tok2', 1, NULL, NULL, NULL, NULL, NULL)",
        "SELECT * FROM conveyor_step_many(%s::text[], 30, 'tok3', 1, 2, '{}', '{}', NULL, NULL,"
        " NULL)",
    ):
        with raw.transaction():
            raw.execute(call, (["q"],))
            setting = raw.execute("SELECT current_setting('synchronous_commit')").fetchone()
        assert setting == ("off",), call
    assert raw.execute("SHOW synchronous_commit").fetchone() == ("on",)  # the session keeps it


def test_a_schema_without_the_take_routine_asks_for_conveyor_migrate(
    server: DatabaseDriver,
) -> None:
    server.migrate()
    kind = "FUNCTION" if server.dialect.name == "postgresql" else "PROCEDURE"
    server.run(lambda cur: cur.execute(f"DROP {kind} conveyor_step"))
    with pytest.raises(ConfigError, match="conveyor migrate"):
        server.reserve(["q"], LEASE)


def test_a_schema_without_the_multi_claim_function_asks_for_conveyor_migrate(
    pg: DatabaseDriver,
) -> None:
    pg.migrate()
    pg.run(lambda cur: cur.execute("DROP FUNCTION conveyor_step_many"))
    with pytest.raises(ConfigError, match=r"migration 6.*conveyor migrate"):
        pg.ack_many_and_claim([], None, ["q"], LEASE, 4)


def test_a_database_migrated_before_the_multi_claim_gets_it_on_the_next_migrate(
    pg: DatabaseDriver,
) -> None:
    pg.migrate()
    pg.run(lambda cur: cur.execute("DROP FUNCTION conveyor_step_many"))
    pg.run(lambda cur: cur.execute("DELETE FROM conveyor_migrations WHERE version = 6"))
    _push(pg, "q", "a", "b")
    upgraded = DatabaseDriver(pg.connection, pg.dialect, auto_migrate=True)
    try:
        _, claimed = upgraded.ack_many_and_claim([], None, ["q"], LEASE, 4)
        assert [job.id for job in claimed] == ["a", "b"]
    finally:
        upgraded.close()


def test_an_idle_mysql_worker_polls_fast_only_while_jobs_came_recently() -> None:
    dialect = MySQLDialect(parse_mysql_url("mysql://root@127.0.0.1/app"))
    assert dialect._poll_every() == 0.005
    dialect._busy_at -= 60
    assert dialect._poll_every() == 0.05
    slow = MySQLDialect(parse_mysql_url("mysql://root@127.0.0.1/app?poll_interval=0.2"))
    assert slow._poll_every() == 0.2


def test_queue_names_beyond_ascii_reach_the_server_side_claim(sql: DatabaseDriver) -> None:
    _push(sql, "émails-📬", "a", "b")
    first = _reserve(sql, "ünused", "émails-📬")
    acked, second = first.ack_and_reserve(["ünused", "émails-📬"], LEASE)
    assert acked and second is not None
    assert (first.queue, second.queue, second.id) == ("émails-📬", "émails-📬", "b")


def test_a_bulk_too_large_for_one_statement_is_stored_whole_and_in_order(
    pg: DatabaseDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "_ONE_STATEMENT_BYTES", 10)
    _push(pg, "q", *(f"job-{i}" for i in range(5)))
    assert pg.size("q").pending == 5
    assert [_reserve(pg, "q").id for _ in range(5)] == [f"job-{i}" for i in range(5)]


@pytest.fixture
def mysql_user(request: pytest.FixtureRequest) -> Callable[[str], DatabaseDriver]:
    """``mysql_user("SELECT, ...")``: a driver on a fresh database as a user with those grants."""
    my_backend.require_mysql()
    name = my_backend.new_database()
    made: list[tuple[str, DatabaseDriver]] = []

    def make(grants: str) -> DatabaseDriver:
        user = f"conveyor_t_{uuid.uuid4().hex[:8]}"
        with my_backend.admin() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
            cur.execute(f"GRANT {grants} ON `{name}`.* TO '{user}'@'%'")
        url = my_backend.database_url(name).replace("://root@", f"://{user}:pw@")
        driver = open_mysql(ConnectionSettings("granted", url))
        assert isinstance(driver, DatabaseDriver)
        made.append((user, driver))
        return driver

    def cleanup() -> None:
        with my_backend.admin() as conn, conn.cursor() as cur:
            for user, driver in made:
                driver.close()
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        my_backend.drop_database(name)

    request.addfinalizer(cleanup)
    return make


_TABLES = "SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX"


def test_a_mysql_user_who_cannot_create_routines_is_told_what_migrating_needs(
    mysql_user: Callable[[str], DatabaseDriver],
) -> None:
    with pytest.raises(ConfigError, match="CREATE ROUTINE"):
        mysql_user(_TABLES).migrate()


def test_create_routine_is_the_only_privilege_mariadb_adds_for_the_hot_path(
    mysql_user: Callable[[str], DatabaseDriver],
) -> None:
    with my_backend.admin() as conn:
        if server_flavor(conn.get_server_info())[0] != "mariadb":
            pytest.skip("MySQL before 8.0.29 also needs ALTER ROUTINE to re-run the migration")
    driver = mysql_user(f"{_TABLES}, CREATE ROUTINE")
    driver.migrate()
    _push(driver, "q", "a", "b")
    acked, claimed = _reserve(driver, "q").ack_and_reserve(["q"], LEASE)
    assert acked and claimed is not None and claimed.id == "b"


@pytest.mark.parametrize("queue", ["a,b", 'say "hi"', "back\\slash", "{braces}", "ü ñ 漢"])
def test_the_one_step_claim_reads_any_queue_name_and_payload_back_unchanged(
    sql: DatabaseDriver, queue: str
) -> None:
    """Queue names travel as an array literal on PostgreSQL: quoting must hold for any name."""
    _push(sql, queue, "a", "b")
    _, (first,) = sql.ack_many_and_claim([], None, [queue], LEASE, 1)
    assert (first.id, first.queue) == ("a", queue)
    acked, second = first.ack_and_reserve([queue], LEASE)
    assert acked and second is not None
    assert (second.id, second.queue, second.attempts) == ("b", queue, 1)
    assert second.payload == b'{"id": "b"}'
    _push(sql, queue, "c", "d")
    acked_flags, claimed = sql.ack_many_and_claim([second], None, [queue], LEASE, 3)
    assert acked_flags == [True]
    assert [(job.id, job.queue, job.payload) for job in claimed] == [
        ("c", queue, b'{"id": "c"}'), ("d", queue, b'{"id": "d"}')
    ]  # fmt: skip


def test_a_step_whose_prepared_statement_the_server_forgot_is_prepared_again(
    pg: DatabaseDriver,
) -> None:
    """A pooler or ``DISCARD ALL`` drops prepared statements behind the driver's back."""
    _push(pg, "q", "a", "b", "c")
    first = _reserve(pg, "q")
    pg._connection().raw.execute("DEALLOCATE ALL")
    acked, second = first.ack_and_reserve(["q"], LEASE)
    assert acked and second is not None and second.id == "b"
    pg._connection().raw.execute("DISCARD ALL")
    acked, third = second.ack_and_reserve(["q"], LEASE)
    assert acked and third is not None and third.id == "c"
    _push(pg, "q", "d", "e")
    pg._connection().raw.execute("DEALLOCATE ALL")
    flags, rest = pg.ack_many_and_claim([third], None, ["q"], LEASE, 2)
    assert flags == [True] and [job.id for job in rest] == ["d", "e"]
