"""The SQL database driver: queue storage on any server a ``Dialect`` describes.

One table holds every job. ``available_at`` is the single column the claim looks at: a pending
job is available from its dispatch time, a delayed one from its due time, and a reserved one
from the end of its lease, so an expired lease needs no sweeper: the job is simply claimable
again. ``reserved_at`` and ``token`` tell a reserved job from a pending one and fence writes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ...errors import ConfigError, ConnectionUnavailable, StorageUnavailable
from ..base import Message, QueueSize, WorkerInfo
from .dialect import (
    Begin,
    Claim,
    DBConnection,
    Dialect,
    Maintaining,
    Pushing,
    Taking,
    TakingMany,
)
from .failed import SQLFailedStore
from .reservation import SQLReservation

log = logging.getLogger("conveyor.database")
T = TypeVar("T")


class DatabaseDriver:
    #: jobs a worker claims ahead by default (``drivers.base.Prefetch``): one, unless the
    #: dialect claims several in one statement (``TakingMany``); one transaction of several
    #: statements cost more than the round trips it saved (PostgreSQL drained 1,326 jobs/s
    #: with four ahead that way, against 2,451 with one)
    prefetch_depth = 1
    #: with ``TakingMany``: deep, because the executor runs several short jobs during one round
    #: trip to the server, and the worker then acknowledges them all in the next
    PREFETCH_DEPTH_MANY = 16
    #: ``drivers.base.Prefetch``: no, a statement's round trip is long (keeping the
    #: acknowledgements until half the queue was gone took a PostgreSQL drain from 7,800-9,000
    #: down to 6,400-7,700 jobs/s in paired runs)
    keep_acks = False

    def __init__(
        self,
        connection: str,
        dialect: Dialect,
        *,
        auto_migrate: bool = False,
        retry_window: float = 10.0,
    ) -> None:
        self.connection = connection
        self.dialect = dialect
        self.retry_window = retry_window
        self._local = threading.local()
        self._migrate_lock = threading.Lock()
        self._migrated = not auto_migrate
        self.failed = SQLFailedStore(self)
        #: the dialect's one-statement acknowledge-and-claim, where the server has one
        self._taking = dialect if isinstance(dialect, Taking) else None
        #: and the same for several jobs each way
        self._taking_many = dialect if isinstance(dialect, TakingMany) else None
        if self._taking_many is not None:
            self.prefetch_depth = self.PREFETCH_DEPTH_MANY
        #: and its one-statement push
        self._pushing = dialect if isinstance(dialect, Pushing) else None
        #: and its upkeep of the tables, which workers run with their heartbeat
        self._maintaining = dialect if isinstance(dialect, Maintaining) else None

    # --- plumbing ---------------------------------------------------------------------------
    @property
    def _conn(self) -> DBConnection | None:
        """One connection per thread: an application shares its driver between threads, and a
        DB-API connection (an sqlite3 one above all) must not run two threads' transactions."""
        conn: DBConnection | None = getattr(self._local, "conn", None)
        return conn

    @_conn.setter
    def _conn(self, conn: DBConnection | None) -> None:
        self._local.conn = conn

    def _connection(self) -> DBConnection:
        if self._conn is None:
            self._conn = self.dialect.connect()
            if not self._migrated:
                with self._migrate_lock:
                    if not self._migrated:
                        self._apply_migrations(self._conn)
                        self._migrated = True
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.debug("closing a broken connection failed", exc_info=True)

    def run(self, fn: Callable[[Any], T], *, write: bool = True, durable: bool = True) -> T:
        """Run ``fn(cursor)`` in one transaction, retrying lock timeouts and lost connections.

        ``write=False`` opens no transaction: each statement of ``fn`` commits on its own (a
        read, or one statement that is its own transaction). ``durable=False`` lets the commit
        return before it is on disk where the server allows it: only for worker-side writes,
        whose loss in a server crash makes a job run again but never loses one.

        Retries stop after ``retry_window`` seconds with ``ConnectionUnavailable``: a dispatch
        never hangs forever and never reports success for a job that was not stored. Storage
        that refuses (a full or read-only disk, an I/O error) raises ``StorageUnavailable`` at
        once: it is not cured within seconds, and the worker's own retry keeps its job, backs
        off and logs each refusal, where a silent retry here would hide it for the whole window.
        """
        deadline = time.monotonic() + self.retry_window
        pause = 0.01
        while True:
            conn: DBConnection | None = None
            try:
                conn = self._connection()
                if write:
                    self.dialect.begin_write(conn, durable)
                cur = conn.cursor()
                try:
                    result = fn(cur)
                finally:
                    cur.close()
                conn.commit()
                return result
            except Exception as exc:
                self._rollback(conn)
                if _missing_table(exc):
                    raise ConfigError(
                        f"{self.dialect.name} connection {self.connection!r}: Conveyor's tables"
                        f" are missing ({str(exc).strip()}); run `conveyor migrate`, or allow"
                        " auto_migrate"
                    ) from None
                if _storage_refused(exc):
                    raise StorageUnavailable(
                        f"{self.dialect.name} connection {self.connection!r}: storage refused"
                        f" the operation: {exc}"
                    ) from exc
                if not self.dialect.is_transient(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise ConnectionUnavailable(
                        f"{self.dialect.name} connection {self.connection!r} unavailable: {exc}"
                    ) from exc
                log.debug("transient %s error, retrying: %s", self.dialect.name, exc)
                time.sleep(pause)
                pause = min(pause * 2, 1.0)

    def _rollback(self, conn: DBConnection | None) -> None:
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception:
            self._drop_connection()

    def sql(self, statement: str) -> str:
        return self.dialect.sql(statement)

    def now(self) -> float:
        """The server's clock; a lost connection is retried like any other call."""
        return self.run(lambda cur: self.dialect.now(self._connection()), write=False)

    # --- schema -----------------------------------------------------------------------------
    def migrate(self) -> None:
        self._apply_migrations(self._connection())
        self._migrated = True

    def _apply_migrations(self, conn: DBConnection) -> None:
        def apply(cur: Any) -> None:
            with self.dialect.migration_lock(cur):
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS conveyor_migrations (version INTEGER PRIMARY KEY)"
                )
                cur.execute("SELECT version FROM conveyor_migrations")
                done = {row[0] for row in cur.fetchall()}
                for version, statements in self.dialect.migrations():
                    if version in done:
                        continue
                    for statement in statements:
                        cur.execute(statement)
                    cur.execute(
                        self.sql("INSERT INTO conveyor_migrations (version) VALUES (?)"), (version,)
                    )

        self._conn = conn
        self.run(apply)

    # --- queue ------------------------------------------------------------------------------
    def push(self, message: Message) -> None:
        self.push_many([message])

    def push_many(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        pushing = self._pushing
        if pushing is not None and self.run(
            lambda cur: pushing.push(self._connection(), messages), write=False
        ):
            return
        self.run(lambda cur: self.insert_messages(cur, messages))

    def insert_messages(self, cur: Any, messages: Sequence[Message]) -> None:
        """Insert inside the caller's transaction (a push, or an ack handing over to successors)."""
        now = self.dialect.now(self._connection())
        cur.executemany(
            self.sql(
                "INSERT INTO conveyor_jobs (id, queue, payload, attempts, available_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)"
            ),
            [(m.id, m.queue, m.payload.decode(), 0, now + m.delay, now) for m in messages],
        )
        self.dialect.notify(self._connection(), sorted({m.queue for m in messages}))

    def reserve(
        self, queues: Sequence[str], lease: float, wait: float = 0.0
    ) -> SQLReservation | None:
        deadline = time.monotonic() + wait
        while True:
            found = self._claim(queues, lease)
            remaining = deadline - time.monotonic()
            if found is not None or remaining <= 0:
                return found
            due = self._seconds_until_due(queues)
            self.dialect.wait_for_jobs(self._connection(), min(remaining, due))

    def _claim(self, queues: Sequence[str], lease: float) -> SQLReservation | None:
        return self.take(queues, lease)[2]

    def take(
        self,
        queues: Sequence[str],
        lease: float,
        done: tuple[str, str] | None = None,
        begin: Begin | None = None,
        count: bool = True,
    ) -> tuple[bool, bool, SQLReservation | None]:
        """Delete ``done`` (job id, token) if the token still matches, count the start of the
        prefetched ``begin``, and claim the next job (a prefetch unless ``count``), in one
        transaction: one statement where the dialect has one, else a few."""
        token = uuid.uuid4().hex
        taking = self._taking
        if taking is not None:

            def one_statement(cur: Any) -> tuple[bool, bool, SQLReservation | None]:
                conn = self._connection()
                acked, begun, claim = taking.take(conn, queues, lease, token, done, begin, count)
                return acked, begun, self._reservation(claim, token)

            return self.run(one_statement, write=False)

        def statements(cur: Any) -> tuple[bool, bool, SQLReservation | None]:
            acked = begun = False
            if done is not None:
                cur.execute(self.sql("DELETE FROM conveyor_jobs WHERE id = ? AND token = ?"), done)
                acked = cur.rowcount == 1
            if begin is not None:
                begun = self.begin_in(cur, begin)
            return acked, begun, self.claim_in(queues, lease, token, count)

        return self.run(statements, durable=False)

    def ack_many_and_claim(
        self,
        done: Sequence[SQLReservation],
        begin: SQLReservation | None,
        queues: Sequence[str],
        lease: float,
        n: int,
        count: bool = False,
    ) -> tuple[list[bool], list[SQLReservation]]:
        """Delete the jobs ``done``, count the start of the prefetched ``begin`` and claim up
        to ``n`` jobs (with ``count`` the first starts now, the others are prefetches) in one
        transaction; in one statement where the dialect has one (``take`` for one job each
        way, ``take_many`` for more)."""
        started = None if begin is None else (begin.id, begin.token, begin.attempts)
        many = self._taking_many
        if many is not None and (n > 1 or len(done) > 1):
            token = uuid.uuid4().hex
            pairs = [(job.id, job.token) for job in done]

            def one_statement(cur: Any) -> tuple[list[bool], bool, list[SQLReservation]]:
                conn = self._connection()
                flags, begun, claims = many.take_many(
                    conn, queues, lease, token, pairs, started, n, count
                )
                found = (self._reservation(claim, own) for claim, own in claims)
                return flags, begun, [r for r in found if r is not None]

            flags, begun, found = self.run(one_statement, write=False)
        elif n == 1 and len(done) <= 1:
            first = (done[0].id, done[0].token) if done else None
            acked, begun, claimed = self.take(queues, lease, first, started, count)
            flags, found = ([acked] if done else []), ([claimed] if claimed else [])
        else:
            # fixed before the first try: a retry finds what a lost commit claimed (claim_in)
            tokens = [uuid.uuid4().hex for _ in range(n)]

            def statements(cur: Any) -> tuple[list[bool], bool, list[SQLReservation]]:
                flags = []
                for job in done:
                    cur.execute(
                        self.sql("DELETE FROM conveyor_jobs WHERE id = ? AND token = ?"),
                        (job.id, job.token),
                    )
                    flags.append(cur.rowcount == 1)
                begun = started is not None and self.begin_in(cur, started)
                found = []
                for i, token in enumerate(tokens):
                    claimed = self.claim_in(queues, lease, token, count and i == 0)
                    if claimed is None:
                        break
                    found.append(claimed)
                return flags, begun, found

            flags, begun, found = self.run(statements, durable=False)
        if begin is not None and not begun:
            log.warning("job %s: lease was lost before it started; another worker may run it",
                        begin.id)  # fmt: skip
        return flags, found

    def begin_in(self, cur: Any, begin: Begin) -> bool:
        """Count a prefetched job's attempt, inside the caller's transaction. The count is set,
        not added: while its token holds the job nothing else changes it, and a retried
        transaction counts it once."""
        job_id, token, attempts = begin
        cur.execute(
            self.sql("UPDATE conveyor_jobs SET attempts = ? WHERE id = ? AND token = ?"),
            (attempts, job_id, token),
        )
        if cur.rowcount == 1:
            return True
        # MySQL counts changed rows only: a repeated call changes none, yet may hold the job
        cur.execute(
            self.sql("SELECT 1 FROM conveyor_jobs WHERE id = ? AND token = ?"), (job_id, token)
        )
        return cur.fetchone() is not None

    def _reservation(self, claim: Claim | None, token: str) -> SQLReservation | None:
        if claim is None:
            return None
        queue, (job_id, payload, attempts) = claim
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        return SQLReservation(self, str(job_id), queue, data, int(attempts), token)

    def claim_in(
        self, queues: Sequence[str], lease: float, token: str | None = None, count: bool = True
    ) -> SQLReservation | None:
        """Claim inside the caller's transaction (a reserve, or an ack that claims the next).

        A retry passes the first try's ``token``: if that try committed but its answer was lost
        with the connection, the dialect finds the job it reserved instead of orphaning it.
        """
        token = token or uuid.uuid4().hex
        conn = self._connection()
        now = self.dialect.now(conn)
        for queue in queues:
            row = self.dialect.claim(conn, queue, now, now + lease, token, count)
            if row is not None:
                return self._reservation((queue, row), token)
        return None

    def _seconds_until_due(self, queues: Sequence[str]) -> float:
        marks = ", ".join("?" for _ in queues)

        def earliest(cur: Any) -> float:
            cur.execute(
                self.sql(f"SELECT MIN(available_at) FROM conveyor_jobs WHERE queue IN ({marks})"),
                list(queues),
            )
            row = cur.fetchone()
            if row is None or row[0] is None:
                return 3600.0
            return max(0.0, float(row[0]) - self.dialect.now(self._connection()))

        return self.run(earliest, write=False)

    def size(self, queue: str) -> QueueSize:
        def count(cur: Any) -> QueueSize:
            now = self.dialect.now(self._connection())
            cur.execute(
                self.sql(
                    "SELECT"
                    " SUM(CASE WHEN reserved_at IS NULL AND available_at <= ? THEN 1 ELSE 0 END),"
                    " SUM(CASE WHEN reserved_at IS NULL AND available_at > ? THEN 1 ELSE 0 END),"
                    " SUM(CASE WHEN reserved_at IS NOT NULL THEN 1 ELSE 0 END)"
                    " FROM conveyor_jobs WHERE queue = ?"
                ),
                (now, now, queue),
            )
            row = cur.fetchone() or (0, 0, 0)
            return QueueSize(*(int(v or 0) for v in row))

        return self.run(count, write=False)

    def queues(self) -> list[str]:
        def names(cur: Any) -> list[str]:
            cur.execute("SELECT DISTINCT queue FROM conveyor_jobs ORDER BY queue")
            return [str(r[0]) for r in cur.fetchall()]

        return self.run(names, write=False)

    def clear(self, queue: str) -> int:
        def delete(cur: Any) -> int:
            cur.execute(self.sql("DELETE FROM conveyor_jobs WHERE queue = ?"), (queue,))
            return int(cur.rowcount)

        return self.run(delete)

    # --- control plane ----------------------------------------------------------------------
    def request_restart(self) -> float:
        def mark(cur: Any) -> float:
            now = self.dialect.now(self._connection())
            cur.execute(self.sql(self.dialect.upsert_meta_sql()), ("restart", repr(now)))
            return now

        return self.run(mark)

    def restart_requested_at(self) -> float | None:
        def read(cur: Any) -> float | None:
            cur.execute(self.sql("SELECT value FROM conveyor_meta WHERE name = ?"), ("restart",))
            row = cur.fetchone()
            return float(row[0]) if row else None

        return self.run(read, write=False)

    def heartbeat(self, info: WorkerInfo) -> None:
        def beat(cur: Any) -> None:
            cur.execute(
                self.sql(self.dialect.upsert_worker_sql()),
                (info.id, info.hostname, info.pid, ",".join(info.queues), info.started_at,
                 info.last_seen, info.processed, info.current_job),
            )  # fmt: skip

        self.run(beat)
        if self._maintaining is not None:
            try:
                self._maintaining.maintain(self._connection())
            except Exception:  # upkeep must never cost a worker its heartbeat
                log.debug("table upkeep failed; the next heartbeat tries again", exc_info=True)

    def forget_worker(self, worker_id: str) -> None:
        self.run(
            lambda cur: cur.execute(
                self.sql("DELETE FROM conveyor_workers WHERE id = ?"), (worker_id,)
            )
        )

    def workers(self, seen_within: float) -> list[WorkerInfo]:
        def read(cur: Any) -> list[WorkerInfo]:
            since = time.time() - seen_within
            cur.execute(
                self.sql(
                    "SELECT id, hostname, pid, queues, started_at, last_seen, processed,"
                    " current_job"
                    " FROM conveyor_workers WHERE last_seen >= ? ORDER BY started_at"
                ),
                (since,),
            )
            return [
                WorkerInfo(r[0], r[1], int(r[2]), tuple(str(r[3]).split(",")), float(r[4]),
                           float(r[5]), int(r[6]), r[7])
                for r in cur.fetchall()
            ]  # fmt: skip

        return self.run(read, write=False)

    def close(self) -> None:
        self._drop_connection()


def _missing_table(exc: Exception) -> bool:
    """A table of Conveyor's is not there: migrations were not run (``auto_migrate=false``)."""
    if getattr(exc, "sqlstate", None) == "42P01":  # PostgreSQL undefined_table
        return True
    if type(exc).__module__.startswith("pymysql") and exc.args and exc.args[0] == 1146:
        return True
    return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)


#: SQLite's primary result codes for storage that refuses: SQLITE_READONLY, SQLITE_IOERR,
#: SQLITE_FULL, SQLITE_CANTOPEN (the extended codes carry them in their low byte)
_SQLITE_STORAGE = {8, 10, 13, 14}
#: PostgreSQL disk_full; MariaDB/MySQL ER_DISK_FULL and ER_RECORD_FILE_FULL (table space full)
_PG_STORAGE = {"53100"}
_MYSQL_STORAGE = {1021, 1114}


def _storage_refused(exc: Exception) -> bool:
    """The server's storage refused the operation: a full disk, read-only or failing storage."""
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_STORAGE
    if getattr(exc, "sqlstate", None) in _PG_STORAGE:
        return True
    return (
        type(exc).__module__.startswith("pymysql")
        and bool(exc.args)
        and exc.args[0] in _MYSQL_STORAGE
    )
