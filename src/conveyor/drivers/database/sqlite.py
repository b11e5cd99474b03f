"""SQLite: the embedded default. One file, many processes, no server.

WAL lets readers run beside the single writer; ``BEGIN IMMEDIATE`` takes the write lock before
reading, so two workers can never claim the same row; a generous busy timeout plus the driver's
retry turn "database is locked" into a short wait. Idle workers watch ``PRAGMA data_version``
(which changes when another connection commits) so they wake within milliseconds of a dispatch
without writing anything while they wait.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ...errors import ConnectionUnavailable
from .dialect import ON_CONFLICT_META_UPSERT, ON_CONFLICT_WORKER_UPSERT, DBConnection, Row
from .schema import MIGRATIONS, render

_TYPES = {
    "id": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "text_key": "TEXT",
    "blob": "TEXT",
    "real": "REAL",
    "if_not_exists": "IF NOT EXISTS",
}


class SQLiteDialect:
    name = "sqlite"
    poll_interval = 0.002

    def __init__(self, path: str, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout

    def connect(self) -> DBConnection:
        """A connection in WAL mode, or ``ConnectionUnavailable`` naming the file and the cause.

        The file that cannot be opened or set up (a folder in its place, no permission, a full
        or read-only disk) is this backend's unreachable server; a lock timeout is left to the
        driver's retry.
        """
        try:
            if self.path != ":memory:":
                parent = os.path.dirname(os.path.abspath(self.path))
                os.makedirs(parent, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise self._unavailable(exc) from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            conn.close()
            if self.is_transient(exc):
                raise
            raise self._unavailable(exc) from exc
        return _AutoBegin(conn)

    def _unavailable(self, exc: BaseException) -> ConnectionUnavailable:
        return ConnectionUnavailable(f"SQLite database {self.path} unavailable: {exc}")

    def sql(self, statement: str) -> str:
        """A job INSERT skips ids already stored, as on the server databases: a failed job
        retried twice (the first retry crashed before forgetting its record) stays one job."""
        if statement.startswith("INSERT INTO conveyor_jobs "):
            return statement + " ON CONFLICT (id) DO NOTHING"
        return statement

    def migrations(self) -> Sequence[tuple[int, Sequence[str]]]:
        return [(v, [render(s, _TYPES) for s in stmts]) for v, stmts in MIGRATIONS]

    def migration_lock(self, cur: Any) -> AbstractContextManager[None]:
        """Nothing to take: ``BEGIN IMMEDIATE`` already lets one migrator in at a time."""
        return nullcontext()

    def now(self, conn: DBConnection) -> float:
        return time.time()

    def begin_write(self, conn: DBConnection, durable: bool = True) -> None:
        """``durable`` changes nothing: WAL with ``synchronous=NORMAL`` already commits
        without a sync, and survives a crash of any process (only power loss can undo it)."""
        assert isinstance(conn, _AutoBegin)
        conn.raw.execute("BEGIN IMMEDIATE")

    def claim(
        self,
        conn: DBConnection,
        queue: str,
        now: float,
        lease_until: float,
        token: str,
        count: bool = True,
    ) -> Row | None:
        cur = conn.cursor()
        cur.execute(
            "UPDATE conveyor_jobs SET attempts = attempts + ?, available_at = ?, reserved_at = ?,"
            " token = ? WHERE seq = (SELECT seq FROM conveyor_jobs WHERE queue = ?"
            " AND available_at <= ? ORDER BY available_at, seq LIMIT 1)"
            " RETURNING id, payload, attempts",
            (int(count), lease_until, now, token, queue, now),
        )
        row: Row | None = cur.fetchone()
        return None if row is None else (row[0], row[1], int(row[2]) + (0 if count else 1))

    def wait_for_jobs(self, conn: DBConnection, timeout: float) -> None:
        assert isinstance(conn, _AutoBegin)
        deadline = time.monotonic() + timeout
        start = conn.raw.execute("PRAGMA data_version").fetchone()[0]
        while time.monotonic() < deadline:
            time.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
            if conn.raw.execute("PRAGMA data_version").fetchone()[0] != start:
                return

    def notify(self, conn: DBConnection, queues: Sequence[str]) -> None:
        """Nothing to do: idle workers see the commit through ``PRAGMA data_version``."""

    def is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "busy" in str(exc)
        )

    def upsert_meta_sql(self) -> str:
        return ON_CONFLICT_META_UPSERT

    def upsert_worker_sql(self) -> str:
        return ON_CONFLICT_WORKER_UPSERT


class _AutoBegin:
    """sqlite3 in autocommit mode, with explicit transactions the driver opens and commits.

    Python's implicit BEGIN (deferred) would let two workers both read the same row before
    either upgrades to a write lock; the driver always opens the transaction itself instead.
    """

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def cursor(self) -> Any:
        return self.raw.cursor()

    def begin(self) -> None:
        self.raw.execute("BEGIN")

    def commit(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()
