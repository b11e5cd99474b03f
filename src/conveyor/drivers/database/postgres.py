"""PostgreSQL through psycopg 3: the SQL driver for many workers on many machines.

The claim is one statement: a CTE picks the oldest available row with ``FOR UPDATE SKIP LOCKED``
(so concurrent workers step over each other's rows instead of queueing behind them) and the
``UPDATE ... RETURNING`` takes the lease. Every time the queue stores comes from the server's
``clock_timestamp()``, so workers with skewed clocks agree on leases and delays.

A push sends ``pg_notify`` inside its transaction, so the notification leaves only when the job
is committed. Each worker listens on a second, autocommit connection and sleeps on that socket
while idle, waking within a round trip of a dispatch. Notifications sent while the listener is
disconnected are lost, so after (re)connecting it the worker looks again, and it never waits
longer than the worker's own poll before looking anyway.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ...config import ConnectionSettings
from ...errors import ConfigError
from ..base import Driver
from .dialect import DBConnection, Row
from .driver import DatabaseDriver
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

_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"
#: no parameters, so psycopg sends both in one simple-protocol message
_BEGIN_NOW = f"BEGIN; {_NOW}"
_CLAIM = """
WITH next AS (
    SELECT seq FROM conveyor_jobs
    WHERE queue = %s AND available_at <= %s
    ORDER BY available_at, seq
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE conveyor_jobs AS j
SET attempts = j.attempts + 1, available_at = %s, reserved_at = %s, token = %s
FROM next WHERE j.seq = next.seq
RETURNING j.id, j.payload, j.attempts
"""
#: A push whose COMMIT went through but whose answer was lost with the connection is retried
#: by the driver; its rows are then already there, and the retry must succeed, not fail on a
#: duplicate id (ids are fresh per dispatch, so nothing else ever collides).
RETRY_SAFE = " ON CONFLICT (id) DO NOTHING"
#: the claim a lost answer may hide: this token's reservation (reserved rows are not available)
_MINE = (
    "SELECT id, payload, attempts FROM conveyor_jobs"
    " WHERE queue = %s AND available_at > %s AND token = %s"
)
#: ``INSERT ... VALUES (%s, ...)`` and what follows the row (ON CONFLICT ...)
_VALUES = re.compile(r"^(INSERT INTO .+? VALUES )(\((?:%s, )*%s\))(.*)$", re.DOTALL)
_CHUNK = 1000
_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: SQLSTATE classes worth a retry: connection exception, transaction rollback (serialization
#: failure 40001, deadlock 40P01), insufficient resources, operator intervention (admin
#: shutdown, cannot connect now), system error; plus lock_not_available.
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
#: a connect that fails for one of these reasons fails the same way next time
_PERMANENT_CONNECT = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf",
    "permission denied",
)
_OWN_OPTIONS = ("schema", "retry_window", "poll_interval", "auto_migrate")


@dataclass(frozen=True)
class PostgresOptions:
    conninfo: str
    schema: str | None = None
    retry_window: float = 10.0
    poll_interval: float = 0.5
    auto_migrate: bool = True


def open_postgres(settings: ConnectionSettings) -> Driver:
    """The driver for a ``postgresql://`` or ``postgres://`` connection.

    Besides the libpq parameters, the URL takes ``schema`` (tables live there; created by the
    first migration), ``retry_window`` (seconds an operation retries a lost server before
    ``ConnectionUnavailable``), ``poll_interval`` (seconds between looks while the listening
    connection is down) and ``auto_migrate`` (``false``: only ``conveyor migrate`` creates
    tables, for database users without DDL rights).
    """
    opts = parse_url(settings.url, settings.name)
    dialect = PostgresDialect(opts.conninfo, opts.schema, opts.poll_interval)
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
        raise ConfigError(f"connection {name!r}: invalid PostgreSQL URL: {exc}") from None
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


class _Cursor(psycopg.Cursor[Any]):
    """psycopg's cursor, with ``executemany`` of an INSERT sent as multi-row INSERTs.

    psycopg runs ``executemany`` as one statement per row in pipeline mode, which costs a single
    dispatch (the common case) more than half a millisecond and caps a bulk dispatch at some
    20,000 rows/s; one ``INSERT ... VALUES (...), (...)`` per chunk does both in one statement.
    """

    def executemany(self, query: Any, params_seq: Any, *, returning: bool = False) -> None:
        rows = params_seq if isinstance(params_seq, list) else list(params_seq)
        match = _VALUES.match(query) if isinstance(query, str) and not returning else None
        if match is None or not rows:
            super().executemany(query, rows, returning=returning)
            return
        head, group, tail = match.groups()
        for at in range(0, len(rows), _CHUNK):
            chunk = rows[at : at + _CHUNK]
            values = ", ".join([group] * len(chunk))
            self.execute(f"{head}{values}{tail}", [value for row in chunk for value in row])


def _connect(conninfo: str, autocommit: bool = True) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(conninfo, autocommit=autocommit, cursor_factory=_Cursor)
    except psycopg.OperationalError as exc:
        text = str(exc)
        if any(reason in text for reason in _PERMANENT_CONNECT) and "FATAL" in text:
            raise ConfigError(f"cannot use PostgreSQL: {text.strip()}") from None
        raise


class PostgresDialect:
    name = "postgresql"

    def __init__(self, conninfo: str, schema: str | None = None, poll_interval: float = 0.5):
        self.conninfo = conninfo
        self.schema = schema
        #: seconds between looks while idle when the listening connection cannot be had
        self.poll_interval = poll_interval
        self.channel = f"conveyor_{schema}" if schema else "conveyor"
        self._claim_token = ""
        self._claimed_queues: set[str] = set()

    def connect(self) -> DBConnection:
        return PGConnection(_connect(self.conninfo), self)

    def sql(self, statement: str) -> str:
        return _paramstyle(statement)

    def migrations(self) -> Sequence[tuple[int, Sequence[str]]]:
        return [(v, [render(s, _TYPES) for s in stmts]) for v, stmts in MIGRATIONS]

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

    def begin_write(self, conn: DBConnection) -> None:
        assert isinstance(conn, PGConnection)
        conn.begin()

    def claim(
        self, conn: DBConnection, queue: str, now: float, lease_until: float, token: str
    ) -> Row | None:
        assert isinstance(conn, PGConnection)
        conn.discard_notifications()
        row: Row | None = None
        if self._retrying(token, queue):
            row = conn.raw.execute(_MINE, (queue, now, token)).fetchone()
        if row is None:
            row = conn.raw.execute(_CLAIM, (queue, now, lease_until, now, token)).fetchone()
        return row

    def _retrying(self, token: str, queue: str) -> bool:
        """Whether the driver repeats this claim (same token) after an error.

        The first try may have committed though its connection broke before the answer came
        back: the job is then reserved under this token and is handed over now, rather than
        left to wait out its lease and be charged a second attempt.
        """
        if token != self._claim_token:
            self._claim_token, self._claimed_queues = token, set()
        again = queue in self._claimed_queues
        self._claimed_queues.add(queue)
        return again

    def wait_for_jobs(self, conn: DBConnection, timeout: float) -> None:
        assert isinstance(conn, PGConnection)
        conn.wait_for_notification(timeout)

    def notify(self, conn: DBConnection, queues: Sequence[str]) -> None:
        assert isinstance(conn, PGConnection)
        conn.raw.execute(
            "SELECT pg_notify(%s, q) FROM unnest(%s::text[]) AS q", (self.channel, list(queues))
        )

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, psycopg.InterfaceError):
            return True  # the connection object is closed: reconnect
        if not isinstance(exc, psycopg.OperationalError):
            return False
        state = exc.sqlstate
        # no SQLSTATE: raised by libpq itself (refused, reset, timed out, server closed)
        return state is None or state[:2] in _TRANSIENT_CLASSES or state == "55P03"

    def upsert_meta_sql(self) -> str:
        return (
            "INSERT INTO conveyor_meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        )

    def upsert_worker_sql(self) -> str:
        return (
            "INSERT INTO conveyor_workers (id, hostname, pid, queues, started_at, last_seen,"
            " processed, current_job) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
            " SET last_seen = excluded.last_seen, processed = excluded.processed,"
            " current_job = excluded.current_job"
        )


class PGConnection:
    """The driver's autocommit connection plus, once the worker idles, its listening one.

    Autocommit makes a read one round trip (no BEGIN/COMMIT around it); writes open their
    transaction explicitly. Closing this closes the listener too, so a connection the driver
    drops after an error takes its listener with it and both come back together.
    """

    def __init__(self, raw: psycopg.Connection[Any], dialect: PostgresDialect) -> None:
        self.raw = raw
        self._dialect = dialect
        self._listener: psycopg.Connection[Any] | None = None
        self._began_at: float | None = None

    def begin(self) -> None:
        """BEGIN and read the clock in one round trip; the transaction's first ``now()`` uses it.

        A claim or a push asks for the time right after opening its transaction, so this saves
        a round trip on each; the reading is the server's, taken microseconds earlier.
        """
        cur = self.raw.execute(_BEGIN_NOW)
        cur.nextset()
        row = cur.fetchone()
        self._began_at = float(row[0]) if row else None

    def now(self) -> float:
        began, self._began_at = self._began_at, None
        if began is not None:
            return began
        row = self.raw.execute(_NOW).fetchone()
        assert row is not None
        return float(row[0])

    def cursor(self) -> Any:
        return self.raw.cursor()

    def commit(self) -> None:
        self._began_at = None
        self.raw.commit()

    def rollback(self) -> None:
        self._began_at = None
        if self.raw.broken or self.raw.closed:
            raise psycopg.OperationalError("the connection was lost")  # the driver drops it
        self.raw.rollback()

    def close(self) -> None:
        self._close_listener()
        self.raw.close()

    def wait_for_notification(self, timeout: float) -> None:
        """Sleep until a push is announced or ``timeout`` passes; never raises."""
        if timeout <= 0:
            return
        if self._listener is None:
            try:
                self._listener = self._listen()
            except (psycopg.Error, ConfigError):
                time.sleep(min(timeout, self._dialect.poll_interval))
            return  # announcements made before LISTEN are lost: let the caller look again
        try:
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            self._close_listener()
            time.sleep(min(timeout, self._dialect.poll_interval))

    def discard_notifications(self) -> None:
        """Drop announcements that arrived before a claim: the claim itself sees those jobs."""
        if self._listener is None:
            return
        try:
            for _ in self._listener.notifies(timeout=0):
                pass
        except psycopg.Error:
            self._close_listener()

    def _listen(self) -> psycopg.Connection[Any]:
        listener = _connect(self._dialect.conninfo)
        try:
            listener.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self._dialect.channel)))
        except BaseException:
            listener.close()
            raise
        return listener

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(psycopg.Error):
                listener.close()
