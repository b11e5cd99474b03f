"""What differs between SQL servers, behind one small interface the SQL driver calls.

The driver writes portable SQL with ``?`` placeholders and leaves to the dialect the parts that
are not portable: connecting, the schema, the atomic claim, the clock, waking idle workers and
telling a lost connection from a real error.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

from ..base import Message

Row = tuple[Any, ...]
#: (queue, (id, payload, attempts)) of a claimed job; a prefetch's attempts are what they will
#: be once it starts
Claim = tuple[str, Row]
#: (id, token, attempts) of a prefetched job starting now: its stored count is set to attempts
Begin = tuple[str, str, int]


class Cursor(Protocol):
    rowcount: int

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...
    def close(self) -> None: ...


class DBConnection(Protocol):
    def cursor(self) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...


class Dialect(Protocol):
    name: str
    #: seconds between cheap checks while idle when the server cannot push a wake-up
    poll_interval: float

    def connect(self) -> DBConnection: ...
    def sql(self, statement: str) -> str:
        """Turn the driver's ``?`` placeholders into this server's paramstyle."""
        ...

    def migrations(self) -> Sequence[tuple[int, Sequence[str]]]: ...
    def migration_lock(self, cur: Any) -> AbstractContextManager[None]:
        """Keep other processes from migrating the same database until the block ends."""
        ...

    def now(self, conn: DBConnection) -> float: ...
    def begin_write(self, conn: DBConnection, durable: bool = True) -> None:
        """Open a transaction that will write (SQLite takes the write lock up front).

        ``durable=False``: the commit may return before it is on disk, where the server can do
        that per transaction. The driver asks for it only for worker-side writes (claim, ack,
        release, extend, fail-move), whose loss in a server crash makes a job run again.
        """
        ...

    def claim(
        self,
        conn: DBConnection,
        queue: str,
        now: float,
        lease_until: float,
        token: str,
        count: bool = True,
    ) -> Row | None:
        """Atomically claim one available job of ``queue``: (id, payload, attempts) or None.

        ``count=False`` is a prefetch: the stored attempt count stays, and the attempts
        returned are what it will be once the job starts."""
        ...

    def wait_for_jobs(self, conn: DBConnection, timeout: float) -> None:
        """Block up to ``timeout`` s, returning early when other sessions may have added jobs."""
        ...

    def notify(self, conn: DBConnection, queues: Sequence[str]) -> None:
        """Tell idle workers that ``queues`` got jobs (inside the pushing transaction)."""
        ...

    def is_transient(self, exc: BaseException) -> bool:
        """A lock timeout or a lost connection: retry (after reconnecting) rather than fail."""
        ...

    def upsert_meta_sql(self) -> str: ...
    def upsert_worker_sql(self) -> str: ...


@runtime_checkable
class Taking(Protocol):
    """Optional on a dialect: acknowledge a job and claim the next in one statement.

    The hot path of a busy worker. The driver runs it outside any transaction it opens (the
    statement is its own), so a dialect that has it serves a worker in one round trip per job.
    """

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
        """Delete ``done`` (id, token) if the token still matches, count the start of
        ``begin`` if its token still matches, then claim the oldest available job of the first
        queue in ``queues`` that has one under ``token`` (a prefetch unless ``count``): whether
        ``done`` was deleted, whether ``begin`` was counted, and the claim or None. A call
        repeated with the same ``token`` (after a broken connection) hands over the job the
        first call may have claimed."""
        ...


@runtime_checkable
class TakingMany(Protocol):
    """Optional on a dialect: ``Taking`` for several jobs each way, still one statement.

    With it a worker claims several jobs ahead and acknowledges them in batches, and one round
    trip serves several jobs; without it each further claim is a statement of its own, and
    the driver keeps workers to one job ahead.
    """

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
        """Delete each of ``done`` (id, token) whose token still matches, count the start of
        ``begin``, and claim up to ``n`` jobs in queue priority order, each under a token of
        its own derived from ``token`` (with ``count`` the first starts now): whether each of
        ``done`` was deleted, whether ``begin`` was counted, and the claims with their tokens.
        A call repeated with the same ``token`` hands over what the first call claimed."""
        ...


@runtime_checkable
class Pushing(Protocol):
    """Optional on a dialect: a dispatch in one statement that commits durably on its own."""

    def push(self, conn: DBConnection, messages: Sequence[Message]) -> bool:
        """Store ``messages`` (ids already stored are skipped: a retried push whose first try
        committed must succeed) and wake idle workers, in one statement and one transaction.

        False, having stored nothing, leaves them to the driver's own transaction.
        """
        ...


@runtime_checkable
class Maintaining(Protocol):
    """Optional on a dialect: upkeep of the tables, run by workers with their heartbeat."""

    def maintain(self, conn: DBConnection) -> None:
        """Cheap when there is nothing to do; slow work goes to the background."""
        ...


class RetriedClaims:
    """Which queues a claim token has already tried, for dialects that claim in two steps.

    The driver repeats a claim with the same token after an error. The first try may have
    committed though its connection broke before the answer came back: the job is then
    reserved under this token and is handed over, rather than left to wait out its lease and
    be charged a second attempt.
    """

    def __init__(self) -> None:
        self._token = ""
        self._queues: set[str] = set()

    def seen(self, token: str, queue: str) -> bool:
        if token != self._token:
            self._token, self._queues = token, set()
        again = queue in self._queues
        self._queues.add(queue)
        return again


#: ``INSERT ... ON CONFLICT`` upserts, shared by the dialects that speak it (SQLite, PostgreSQL)
ON_CONFLICT_META_UPSERT = (
    "INSERT INTO conveyor_meta (name, value) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
ON_CONFLICT_WORKER_UPSERT = (
    "INSERT INTO conveyor_workers (id, hostname, pid, queues, started_at, last_seen,"
    " processed, current_job) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
    " SET last_seen = excluded.last_seen, processed = excluded.processed,"
    " current_job = excluded.current_job"
)
