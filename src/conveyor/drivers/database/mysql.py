"""MariaDB 10.6+ and MySQL 8 through PyMySQL.

The claim is a locking read with ``FOR UPDATE SKIP LOCKED`` (neither server can ``UPDATE ...
RETURNING``) followed by an update of that one row by primary key, in one transaction under
READ COMMITTED so that the locking read takes no gap locks that would stall concurrent pushes.
A worker runs it, with the acknowledgement of the job it finished, in a stored procedure: one
round trip per job (``mysql_take``). The clock is the server's ``NOW(6)`` in a UTC session, so
there is no daylight-saving hour.

Neither server can push a wake-up to a client, so an idle worker polls ``MAX(seq)`` (the last
entry of the primary key) and looks for jobs when it moves: every ``poll_interval`` seconds
(0.005 by default) while it has had jobs in the last ``_BUSY_FOR`` seconds, and no more often
than every ``_RESTING_POLL`` seconds after that, so a long-idle worker costs the server little.
Older servers lack ``SKIP LOCKED``; connecting to one fails with a ``ConfigError`` naming the
version instead of claiming jobs twice.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import pymysql
from pymysql.constants import SERVER_STATUS

from ...config import ConnectionSettings
from ...errors import ConfigError
from ..base import Driver, Message
from .dialect import Begin, Claim, DBConnection, RetriedClaims, Row
from .driver import DatabaseDriver
from .mysql_take import STEP_VERSION, VERSION, Taker, procedures
from .mysql_url import MySQLOptions
from .mysql_url import parse_url as parse_url  # re-exported: the URL is part of this API
from .schema import MIGRATIONS, render

MINIMUM = {"mariadb": (10, 6, 0), "mysql": (8, 0, 1)}
_TEXT_KEY = "VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
_CLAIM = (
    "SELECT seq, id, payload, attempts FROM conveyor_jobs WHERE queue = %s AND available_at <= %s"
    " ORDER BY available_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED"
)
_TAKE = (
    "UPDATE conveyor_jobs SET attempts = attempts + %s, available_at = %s, reserved_at = %s,"
    " token = %s WHERE seq = %s"
)
#: the claim a lost answer may hide: this token's reservation (reserved rows are not available)
_MINE = (
    "SELECT id, payload, attempts FROM conveyor_jobs"
    " WHERE queue = %s AND available_at > %s AND token = %s"
)
#: A push whose COMMIT went through but whose answer was lost with the connection is retried
#: by the driver; its rows are then already there, and the retry must succeed, not fail on a
#: duplicate id (ids are fresh per dispatch, so nothing else ever collides).
RETRY_SAFE = " ON DUPLICATE KEY UPDATE id = id"
#: a single dispatch in one statement that commits on its own (autocommit): one round trip
_PUSH_ONE = (
    "INSERT INTO conveyor_jobs (id, queue, payload, attempts, available_at, created_at)"
    " VALUES (%s, %s, %s, 0, UNIX_TIMESTAMP(NOW(6)) + %s, UNIX_TIMESTAMP(NOW(6)))" + RETRY_SAFE
)
#: seconds after its last job during which an idle worker polls every ``poll_interval``
_BUSY_FOR = 10.0
#: the slowest poll of a worker idle for longer (unless ``poll_interval`` is slower still)
_RESTING_POLL = 0.05
_INDEX = re.compile(r"^CREATE INDEX\s+(\w+)\s+ON\s+(\w+)\b")
#: server errors worth a retry: too many connections, shutdown in progress, aborted connection,
#: network read/write errors, lock wait timeout, deadlock, query interrupted, connection killed
#: (MariaDB), disconnected for inactivity (MySQL). Client errors 2000-2999 (refused, gone away,
#: lost connection) are all about the connection and are retried too.
_TRANSIENT = {1040, 1053, 1152, 1158, 1159, 1160, 1161, 1205, 1213, 1317, 1927, 4031}
#: a migration refused for want of a privilege (database, table, routine, SUPER for binlog)
_DENIED = {1044, 1142, 1227, 1370, 1419}
#: a connect refused for these reasons is refused the same way next time
_PERMANENT_CONNECT = {1044, 1045, 1049, 1698}


def open_mysql(settings: ConnectionSettings) -> Driver:
    """The driver for a ``mysql://`` or ``mariadb://`` connection (``user:pw@host:port/db``).

    URL options: ``connect_timeout`` (5 s), ``read_timeout`` and ``write_timeout`` (30 s: a
    half-open connection is given up after this), ``lock_wait_timeout`` (5 s, InnoDB row locks),
    ``retry_window`` (10 s of retrying a lost server before ``ConnectionUnavailable``),
    ``poll_interval`` (0.05 s between idle looks), ``unix_socket`` and ``auto_migrate``
    (``false``: only ``conveyor migrate`` creates tables, for users without DDL rights).
    """
    opts = parse_url(settings.url, settings.name)
    dialect = MySQLDialect(opts)
    return DatabaseDriver(
        settings.name, dialect, auto_migrate=opts.auto_migrate,
        retry_window=opts.timeouts["retry_window"],
    )  # fmt: skip


def server_flavor(version: str) -> tuple[str, tuple[int, ...]]:
    """("mariadb" | "mysql", (major, minor, patch)) from the handshake's version string."""
    text = version.removeprefix("5.5.5-")  # MariaDB 10's replication-compatibility prefix
    flavor = "mariadb" if "mariadb" in text.lower() else "mysql"
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        raise ConfigError(f"cannot tell the server version from {version!r}")
    return flavor, tuple(int(n or 0) for n in match.groups())


def check_version(version: str) -> str:
    """The flavor, or a ``ConfigError`` if the server cannot ``SKIP LOCKED``."""
    flavor, numbers = server_flavor(version)
    if numbers < MINIMUM[flavor]:
        raise ConfigError(
            f"{flavor} {'.'.join(map(str, numbers))} is too old for Conveyor: claiming jobs"
            " safely needs SELECT ... FOR UPDATE SKIP LOCKED, available from MariaDB 10.6"
            " and MySQL 8.0.1; upgrade the server or use PostgreSQL, Redis or SQLite"
        )
    return flavor


class MySQLDialect:
    name = "mysql"

    def __init__(self, options: MySQLOptions) -> None:
        self.options = options
        self.poll_interval = options.timeouts["poll_interval"]
        #: learnt at connect; decides how an index is created when it may already exist
        self.flavor = "mariadb"
        self._retried = RetriedClaims()
        self._taker = Taker()
        #: when this process last claimed a job or saw one pushed (``time.monotonic()``)
        self._busy_at = time.monotonic()

    def connect(self) -> DBConnection:
        raw = self._open()
        try:
            self.flavor = check_version(raw.get_server_info())
            with raw.cursor() as cur:
                cur.execute(
                    "SET SESSION time_zone = '+00:00', SESSION innodb_lock_wait_timeout = %s",
                    (max(1, round(self.options.timeouts["lock_wait_timeout"])),),
                )
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        except BaseException:
            raw.close()
            raise
        return MySQLConnection(raw)

    def _open(self) -> Any:
        opts, t = self.options, self.options.timeouts
        raw = pymysql.connections.Connection(
            host=opts.host, port=opts.port, user=opts.user, password=opts.password,
            database=opts.database, unix_socket=opts.unix_socket, charset="utf8mb4",
            autocommit=True, connect_timeout=t["connect_timeout"], read_timeout=t["read_timeout"],
            write_timeout=t["write_timeout"], defer_connect=True,
        )  # fmt: skip
        try:
            raw.connect(None if opts.unix_socket else self._socket())
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in _PERMANENT_CONNECT:
                raise ConfigError(f"cannot use MySQL/MariaDB: {exc.args[1]}") from None
            raise
        return raw

    def _socket(self) -> socket.socket:
        """A TCP socket with keepalive probes tuned down from the kernel's two hours."""
        opts = self.options
        try:
            sock = socket.create_connection(
                (opts.host, opts.port), timeout=opts.timeouts["connect_timeout"]
            )
        except OSError as exc:
            raise pymysql.err.OperationalError(
                2003, f"Can't connect to MySQL server on {opts.host}:{opts.port} ({exc})"
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3),
                            ("TCP_USER_TIMEOUT", 30000)):  # fmt: skip
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
        return sock

    def sql(self, statement: str) -> str:
        """``?`` to ``%s``; a job INSERT also skips ids already stored (see ``RETRY_SAFE``)."""
        text = statement.replace("%", "%%").replace("?", "%s")
        return text + RETRY_SAFE if text.startswith("INSERT INTO conveyor_jobs ") else text

    def migrations(self) -> Sequence[tuple[int, Sequence[str]]]:
        types = {
            "id": "BIGINT AUTO_INCREMENT PRIMARY KEY",
            "text_key": _TEXT_KEY,
            "blob": "LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            "real": "DOUBLE",
            "if_not_exists": "IF NOT EXISTS" if self.flavor == "mariadb" else "",
        }
        return [
            (
                v,
                [part for s in stmts for part in self._idempotent(render(s, types))]
                + (procedures(self.flavor, v) if v in (VERSION, STEP_VERSION) else []),
            )
            for v, stmts in MIGRATIONS
        ]

    def _idempotent(self, statement: str) -> list[str]:
        """MySQL has no ``CREATE INDEX IF NOT EXISTS``: ask information_schema first.

        DDL commits implicitly on both servers, so a migration cut short is re-run from its
        start; every statement must therefore succeed when its object already exists.
        """
        match = _INDEX.match(statement)
        if self.flavor == "mariadb" or match is None:
            return [statement]
        index, table = match.groups()
        return [
            "SET @conveyor_ddl = IF((SELECT COUNT(*) FROM information_schema.statistics"
            f" WHERE table_schema = DATABASE() AND table_name = '{table}'"
            f" AND index_name = '{index}') = 0, '{statement}', 'DO 0')",
            "PREPARE conveyor_ddl FROM @conveyor_ddl",
            "EXECUTE conveyor_ddl",
            "DEALLOCATE PREPARE conveyor_ddl",
        ]

    @contextmanager
    def migration_lock(self, cur: Any) -> Iterator[None]:
        """A named lock: DDL commits implicitly here, so a transaction-scoped lock would not do."""
        cur.execute("SELECT GET_LOCK(CONCAT('conveyor_migrate:', DATABASE()), 20)")
        row = cur.fetchone()
        if not row or row[0] != 1:
            raise ConfigError("another process has held the migration lock for 20 s; retry")
        try:
            yield
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in _DENIED:
                raise ConfigError(
                    f"cannot migrate the MySQL/MariaDB database: {exc.args[1]}. The migrating user"
                    " needs CREATE, INDEX and CREATE ROUTINE on it, and on MySQL ALTER ROUTINE"
                    " too (or let a user who has them run `conveyor migrate`, with"
                    " auto_migrate=false in the workers' URL)"
                ) from None
            raise
        finally:
            with suppress(pymysql.err.Error):
                cur.execute("DO RELEASE_LOCK(CONCAT('conveyor_migrate:', DATABASE()))")

    def now(self, conn: DBConnection) -> float:
        with conn.cursor() as cur:
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
            return float(cur.fetchone()[0])

    def begin_write(self, conn: DBConnection, durable: bool = True) -> None:
        """``durable`` changes nothing: InnoDB flushes its log per the server-wide
        ``innodb_flush_log_at_trx_commit``, which no session can relax for itself."""
        assert isinstance(conn, MySQLConnection)
        conn.raw.begin()

    def claim(
        self,
        conn: DBConnection,
        queue: str,
        now: float,
        lease_until: float,
        token: str,
        count: bool = True,
    ) -> Row | None:
        with conn.cursor() as cur:
            if self._retried.seen(token, queue):
                cur.execute(_MINE, (queue, now, token))
                mine: Row | None = cur.fetchone()
                if mine is not None:
                    return (mine[0], mine[1], int(mine[2]) + (0 if count else 1))
            cur.execute(_CLAIM, (queue, now))
            row = cur.fetchone()
            if row is None:
                return None
            seq, job_id, payload, attempts = row
            cur.execute(_TAKE, (int(count), lease_until, now, token, seq))
            return (job_id, payload, int(attempts) + 1)

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
        """Acknowledge ``done``, start ``begin`` and claim the next job in one ``CALL``
        (``mysql_take``)."""
        assert isinstance(conn, MySQLConnection)
        acked, begun, claim = self._taker.take(conn.raw, queues, lease, token, done, begin, count)
        if claim is not None:
            self._busy_at = time.monotonic()
        return acked, begun, claim

    def push(self, conn: DBConnection, messages: Sequence[Message]) -> bool:
        """A single dispatch in one statement; several go through the driver's transaction
        (one multi-row INSERT per megabyte, all or nothing)."""
        if len(messages) != 1:
            return False
        m = messages[0]
        with conn.cursor() as cur:
            cur.execute(_PUSH_ONE, (m.id, m.queue, m.payload.decode(), float(m.delay)))
        return True

    def wait_for_jobs(self, conn: DBConnection, timeout: float) -> None:
        """Poll the newest job's sequence number; return when it moves or ``timeout`` passes.

        Errors are left for the next claim, which reconnects through the driver's retry.
        """
        deadline = time.monotonic() + timeout
        try:
            with conn.cursor() as cur:
                start = self._newest(cur)
                while (left := deadline - time.monotonic()) > 0:
                    time.sleep(min(self._poll_every(), left))
                    if self._newest(cur) != start:
                        self._busy_at = time.monotonic()
                        return
        except pymysql.err.Error:
            return

    def _poll_every(self) -> float:
        if time.monotonic() - self._busy_at < _BUSY_FOR:
            return self.poll_interval
        return max(self.poll_interval, _RESTING_POLL)

    @staticmethod
    def _newest(cur: Any) -> Any:
        cur.execute("SELECT MAX(seq) FROM conveyor_jobs")
        return cur.fetchone()[0]

    def notify(self, conn: DBConnection, queues: Sequence[str]) -> None:
        """Nothing to send: idle workers poll."""

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, pymysql.err.InterfaceError):
            return True  # the connection object is closed: reconnect
        if not isinstance(exc, pymysql.err.OperationalError | pymysql.err.InternalError):
            return False
        code = exc.args[0] if exc.args else None
        if not isinstance(code, int):
            return True  # a protocol error from the client (e.g. packet out of order)
        return code in _TRANSIENT or 2000 <= code < 3000

    def upsert_meta_sql(self) -> str:
        return (
            "INSERT INTO conveyor_meta (name, value) VALUES (?, ?) "
            "ON DUPLICATE KEY UPDATE value = VALUES(value)"
        )

    def upsert_worker_sql(self) -> str:
        return (
            "INSERT INTO conveyor_workers (id, hostname, pid, queues, started_at, last_seen,"
            " processed, current_job) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE"
            " last_seen = VALUES(last_seen), processed = VALUES(processed),"
            " current_job = VALUES(current_job)"
        )


class MySQLConnection:
    """A PyMySQL connection in autocommit mode; writes open their transaction explicitly.

    ``commit`` skips the round trip when no transaction is open (reads), and ``rollback`` on a
    connection PyMySQL already closed raises, so the driver drops it and reconnects.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def cursor(self) -> Any:
        return self.raw.cursor()

    def commit(self) -> None:
        if self.raw.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS:
            self.raw.commit()

    def rollback(self) -> None:
        if not self.raw.open:
            raise pymysql.err.InterfaceError(0, "connection already closed")
        self.raw.rollback()

    def close(self) -> None:
        with suppress(pymysql.err.Error):
            self.raw.close()
