"""PostgreSQL through psycopg 3: the SQL driver for many workers on many machines.

The claim is one statement: a CTE picks the oldest available row with ``FOR UPDATE SKIP LOCKED``
(so concurrent workers step over each other's rows instead of queueing behind them) and the
``UPDATE ... RETURNING`` takes the lease. A worker runs it, with the acknowledgement of the job it
finished, through a server-side function: one round trip per job (``postgres_take``). Every
time the queue stores comes from the server's ``clock_timestamp()``, so workers with skewed
clocks agree on leases and delays.

A push is one statement that also calls ``pg_notify``, so the notification leaves only when the
job is committed. Each worker listens on a second, autocommit connection and sleeps on that
socket while idle, waking within a round trip of a dispatch. Notifications sent while the
listener is disconnected are lost, so after (re)connecting it the worker looks again, and it
never waits longer than the worker's own poll before looking anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ...config import ConnectionSettings
from ...errors import ConfigError
from ...urls import hide_secrets
from ..base import Driver, Message
from .dialect import (
    ON_CONFLICT_META_UPSERT,
    ON_CONFLICT_WORKER_UPSERT,
    Begin,
    Claim,
    DBConnection,
    RetriedClaims,
    Row,
)
from .driver import DatabaseDriver
from .postgres_connection import PGConnection, connect
from .postgres_take import (
    FUNCTIONS,
    MANY_FUNCTIONS,
    MANY_VERSION,
    STEP_FUNCTIONS,
    STEP_VERSION,
    VERSION,
    Taker,
)
from .postgres_vacuum import Vacuumer
from .schema import MIGRATIONS, render

_TYPES = {
    "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "text_key": "TEXT", "blob": "TEXT",
    "real": "DOUBLE PRECISION", "if_not_exists": "IF NOT EXISTS",
}  # fmt: skip

#: libpq settings applied unless the URL sets them: fail a connect to a dead host in seconds,
#: and notice a half-open connection (peer gone without a FIN) by keepalive probes when idle
#: and by an unacknowledged-data timeout while a query is in flight.
LIBPQ_DEFAULTS = {
    "connect_timeout": "5", "keepalives": "1", "keepalives_idle": "10",
    "keepalives_interval": "5", "keepalives_count": "3", "tcp_user_timeout": "30000",
    "application_name": "conveyor",
}  # fmt: skip

_CLAIM = """
WITH next AS (
    SELECT seq FROM conveyor_jobs
    WHERE queue = %s AND available_at <= %s
    ORDER BY available_at, seq
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE conveyor_jobs AS j
SET attempts = j.attempts + %s, available_at = %s, reserved_at = %s, token = %s
FROM next WHERE j.seq = next.seq
RETURNING j.id, j.payload, j.attempts
"""
_FUNCTIONS_AT = {VERSION: FUNCTIONS, STEP_VERSION: STEP_FUNCTIONS, MANY_VERSION: MANY_FUNCTIONS}
#: A push whose COMMIT went through but whose answer was lost with the connection is retried
#: by the driver; its rows are then already there, and the retry must succeed, not fail on a
#: duplicate id (ids are fresh per dispatch, so nothing else ever collides).
RETRY_SAFE = " ON CONFLICT (id) DO NOTHING"
#: A push in one statement (one round trip, one durable commit): the rows in array order, so
#: ``seq`` keeps dispatch order, and a notification per queue that leaves at commit.
_PUSH = """
WITH c AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t),
stored AS (
    INSERT INTO conveyor_jobs (id, queue, payload, attempts, available_at, created_at)
    SELECT m.id, m.queue, m.payload, 0, c.t + m.delay, c.t
    FROM c, unnest(%b::text[], %b::text[], %b::text[], %b::float8[])
        WITH ORDINALITY AS m(id, queue, payload, delay, n)
    ORDER BY m.n
    ON CONFLICT (id) DO NOTHING
    RETURNING queue
)
SELECT pg_notify(%s, q) FROM (SELECT DISTINCT queue AS q FROM stored) AS woken
"""
#: the same for the common single dispatch, without the arrays (some 0.1 ms less)
_PUSH_ONE = """
WITH c AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t),
stored AS (
    INSERT INTO conveyor_jobs (id, queue, payload, attempts, available_at, created_at)
    SELECT %s, %s, %s, 0, c.t + %s, c.t FROM c
    ON CONFLICT (id) DO NOTHING
    RETURNING queue
)
SELECT pg_notify(%s, queue) FROM stored
"""
_ONE_STATEMENT_BYTES = 64 * 1024 * 1024
#: the claim a lost answer may hide: this token's reservation (reserved rows are not available)
_MINE = (
    "SELECT id, payload, attempts FROM conveyor_jobs"
    " WHERE queue = %s AND available_at > %s AND token = %s"
)
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: SQLSTATE classes worth a retry: connection exception, transaction rollback (serialization
#: failure 40001, deadlock 40P01), insufficient resources, operator intervention (admin
#: shutdown, cannot connect now), system error; plus lock_not_available.
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_OWN_OPTIONS = ("schema", "retry_window", "poll_interval", "auto_migrate", "vacuum")


@dataclass(frozen=True)
class PostgresOptions:
    conninfo: str
    schema: str | None = None
    retry_window: float = 10.0
    poll_interval: float = 0.5
    auto_migrate: bool = True
    vacuum: bool = True


def open_postgres(settings: ConnectionSettings) -> Driver:
    """The driver for a ``postgresql://`` or ``postgres://`` connection.

    Besides the libpq parameters, the URL takes ``schema`` (tables live there; created by the
    first migration), ``retry_window`` (seconds an operation retries a lost server before
    ``ConnectionUnavailable``), ``poll_interval`` (seconds between looks while the listening
    connection is down), ``auto_migrate`` (``false``: only ``conveyor migrate`` creates
    tables, for database users without DDL rights) and ``vacuum`` (``false``: workers leave
    vacuuming the jobs table to autovacuum; see ``postgres_vacuum``).
    """
    opts = parse_url(settings.url, settings.name)
    dialect = PostgresDialect(opts.conninfo, opts.schema, opts.poll_interval, opts.vacuum)
    return DatabaseDriver(
        settings.name, dialect, auto_migrate=opts.auto_migrate, retry_window=opts.retry_window
    )


def parse_url(url: str, name: str = "postgres") -> PostgresOptions:
    """Split Conveyor's own options off ``url``; the rest becomes a libpq conninfo string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in _OWN_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _OWN_OPTIONS]
    try:
        params = conninfo_to_dict(
            urlunsplit(parts._replace(scheme="postgresql", query=urlencode(rest)))
        )
    except psycopg.ProgrammingError as exc:
        raise ConfigError(
            f"connection {name!r}: invalid PostgreSQL URL: {hide_secrets(str(exc), url)}"
        ) from None
    for key, value in LIBPQ_DEFAULTS.items():
        params.setdefault(key, value)
    schema = own.get("schema")
    if schema is not None:
        if not _SCHEMA_NAME.match(schema):
            raise ConfigError(
                f"connection {name!r}: schema {schema!r} must be a plain identifier "
                "(letters, digits, underscore; at most 63 characters)"
            )
        params["options"] = f"{params.get('options') or ''} -c search_path={schema}".strip()
    return PostgresOptions(
        conninfo=make_conninfo("", **params),
        schema=schema,
        retry_window=_seconds(own, "retry_window", 10.0, name),
        poll_interval=_seconds(own, "poll_interval", 0.5, name),
        auto_migrate=flag(own.get("auto_migrate", "true"), "auto_migrate", name),
        vacuum=flag(own.get("vacuum", "true"), "vacuum", name),
    )


def flag(raw: str, key: str, name: str) -> bool:
    """A yes/no URL option."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"connection {name!r}: {key} must be true or false, got {raw!r}")


def _seconds(own: dict[str, str], key: str, default: float, name: str) -> float:
    raw = own.get(key)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ConfigError(f"connection {name!r}: {key} must be a positive number, got {raw!r}")
    return value


@lru_cache(maxsize=256)
def _paramstyle(statement: str) -> str:
    """``?`` to ``%s``; a job INSERT also skips ids already stored (see ``RETRY_SAFE``)."""
    text = statement.replace("%", "%%").replace("?", "%s")
    return text + RETRY_SAFE if text.startswith("INSERT INTO conveyor_jobs ") else text


class PostgresDialect:
    name = "postgresql"

    def __init__(
        self,
        conninfo: str,
        schema: str | None = None,
        poll_interval: float = 0.5,
        vacuum: bool = True,
    ) -> None:
        self.conninfo = conninfo
        self.schema = schema
        #: seconds between looks while idle when the listening connection cannot be had
        self.poll_interval = poll_interval
        self.channel = f"conveyor_{schema}" if schema else "conveyor"
        self._retried = RetriedClaims()
        self._taker = Taker()
        self.vacuumer = Vacuumer(lambda: connect(self.conninfo)) if vacuum else None

    def connect(self) -> DBConnection:
        return PGConnection(connect(self.conninfo), self)

    def sql(self, statement: str) -> str:
        return _paramstyle(statement)

    def migrations(self) -> Sequence[tuple[int, Sequence[str]]]:
        """The shared schema, plus the server-side claim function (``postgres_take``)."""
        return [
            (v, [render(s, _TYPES) for s in stmts] + _FUNCTIONS_AT.get(v, []))
            for v, stmts in MIGRATIONS
        ]

    @contextmanager
    def migration_lock(self, cur: Any) -> Iterator[None]:
        """A transaction-scoped advisory lock: DDL is transactional here, so it covers it all."""
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"conveyor:{self.channel}",))
        if self.schema:
            cur.execute(
                pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(self.schema))
            )
        yield

    def now(self, conn: DBConnection) -> float:
        assert isinstance(conn, PGConnection)
        return conn.now()

    def begin_write(self, conn: DBConnection, durable: bool = True) -> None:
        assert isinstance(conn, PGConnection)
        conn.begin(durable)

    def take(
        self,
        conn: DBConnection,
        queues: Sequence[str],
        lease: float,
        token: str,
        done: tuple[str, str] | None = None,
        begin: Begin | None = None,
        count: bool = True,
    ) -> tuple[bool, bool, Claim | None]:
        """Acknowledge ``done``, start ``begin`` and claim the next job in one statement
        (``postgres_take``)."""
        assert isinstance(conn, PGConnection)
        return self._taker.take(conn, queues, lease, token, done, begin, count)

    def take_many(
        self,
        conn: DBConnection,
        queues: Sequence[str],
        lease: float,
        token: str,
        done: Sequence[tuple[str, str]],
        begin: Begin | None,
        n: int,
        count: bool,
    ) -> tuple[list[bool], bool, list[tuple[Claim, str]]]:
        """``take`` for several jobs each way, in one statement (``postgres_take``)."""
        assert isinstance(conn, PGConnection)
        return self._taker.take_many(conn, queues, lease, token, done, begin, n, count)

    def claim(
        self,
        conn: DBConnection,
        queue: str,
        now: float,
        lease_until: float,
        token: str,
        count: bool = True,
    ) -> Row | None:
        assert isinstance(conn, PGConnection)
        conn.discard_notifications()
        row: Row | None = None
        if self._retried.seen(token, queue):
            row = conn.raw.execute(_MINE, (queue, now, token)).fetchone()
        if row is None:
            row = conn.raw.execute(
                _CLAIM, (queue, now, int(count), lease_until, now, token)
            ).fetchone()
        if row is None:
            return None
        job_id, payload, attempts = row
        return job_id, payload, int(attempts) + (0 if count else 1)

    def wait_for_jobs(self, conn: DBConnection, timeout: float) -> None:
        assert isinstance(conn, PGConnection)
        conn.wait_for_notification(timeout)

    def push(self, conn: DBConnection, messages: Sequence[Message]) -> bool:
        """Store ``messages`` and wake idle workers in one statement, committed durably.

        A very large bulk (an array parameter is capped at 1 GB) is left to the driver's
        transaction, which inserts it a thousand rows at a time.
        """
        assert isinstance(conn, PGConnection)
        if len(messages) == 1:
            m = messages[0]
            conn.raw.execute(
                _PUSH_ONE, (m.id, m.queue, m.payload.decode(), float(m.delay), self.channel)
            )
            return True
        if sum(len(m.payload) for m in messages) > _ONE_STATEMENT_BYTES:
            return False
        columns: tuple[list[Any], ...] = ([], [], [], [])
        for m in messages:
            columns[0].append(m.id)
            columns[1].append(m.queue)
            columns[2].append(m.payload.decode())
            columns[3].append(float(m.delay))
        conn.raw.execute(_PUSH, (*columns, self.channel))
        return True

    def notify(self, conn: DBConnection, queues: Sequence[str]) -> None:
        assert isinstance(conn, PGConnection)
        conn.raw.execute(
            "SELECT pg_notify(%s, q) FROM unnest(%s::text[]) AS q", (self.channel, list(queues))
        )

    def maintain(self, conn: DBConnection) -> None:
        assert isinstance(conn, PGConnection)
        if self.vacuumer is not None:
            self.vacuumer.check(conn.raw)

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, psycopg.InterfaceError):
            return True  # the connection object is closed: reconnect
        if not isinstance(exc, psycopg.OperationalError):
            return False
        state = exc.sqlstate
        # no SQLSTATE: raised by libpq itself (refused, reset, timed out, server closed)
        return state is None or state[:2] in _TRANSIENT_CLASSES or state == "55P03"

    def upsert_meta_sql(self) -> str:
        return ON_CONFLICT_META_UPSERT

    def upsert_worker_sql(self) -> str:
        return ON_CONFLICT_WORKER_UPSERT
