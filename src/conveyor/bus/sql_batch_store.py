"""The batch store of the SQL connections (SQLite, PostgreSQL, MariaDB/MySQL).

Each job outcome is one transaction: the fenced delete of the job (or its move to the failed
store), one ``UPDATE`` of the batch's counters, and the inserts of whatever that update made
fire. The ``UPDATE`` also writes a fresh token into the column of each event it fires, under
the condition that the column is still empty; reading the row back, the transaction knows
exactly which events it fired, and since the row stays locked until commit, no other outcome
can fire them again. A killed worker leaves all of that or none of it.

The statements are portable: MySQL evaluates ``SET`` assignments left to right (a later one sees
the new value of an earlier one) where the standard evaluates all against the old row, so every
assignment reads only columns assigned after it, and both readings agree.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from ..drivers.base import FailedRecord, Message, Reservation
from .batch_store import EVENTS, BatchRecord, Fire, Settlement

if TYPE_CHECKING:
    from ..drivers.database.driver import DatabaseDriver

_COLUMNS = (
    "id, name, total_jobs, pending_jobs, failed_jobs, allow_failures, options, created_at,"
    " cancelled_at, finished_at, then_token, catch_token, finally_token"
)
_SELECT = f"SELECT {_COLUMNS} FROM conveyor_batches"
_TOKENS = "then_token, catch_token, finally_token"
_SUCCEEDED = (
    "UPDATE conveyor_batches SET"
    " then_token = CASE WHEN then_token IS NULL AND cancelled_at IS NULL AND pending_jobs <= 1"
    " THEN ? ELSE then_token END,"
    " finally_token = CASE WHEN finally_token IS NULL AND pending_jobs - failed_jobs <= 1"
    " THEN ? ELSE finally_token END,"
    " finished_at = CASE WHEN finished_at IS NULL AND pending_jobs - failed_jobs <= 1"
    " THEN ? ELSE finished_at END,"
    " pending_jobs = pending_jobs - 1"
    " WHERE id = ?"
)
_FAILED = (
    "UPDATE conveyor_batches SET"
    " catch_token = CASE WHEN catch_token IS NULL AND ? = 1 THEN ? ELSE catch_token END,"
    " finally_token = CASE WHEN finally_token IS NULL AND pending_jobs - failed_jobs <= ?"
    " THEN ? ELSE finally_token END,"
    " finished_at = CASE WHEN finished_at IS NULL AND pending_jobs - failed_jobs <= ?"
    " THEN ? ELSE finished_at END,"
    " cancelled_at = CASE WHEN cancelled_at IS NULL AND allow_failures = 0 AND ? = 1"
    " THEN ? ELSE cancelled_at END,"
    " failed_jobs = failed_jobs + ?,"
    " pending_jobs = pending_jobs - ?"
    " WHERE id = ?"
)
_options = msgspec.json.Encoder()
_decode_options = msgspec.json.Decoder(dict[str, Any])


def _text(value: Any) -> str:
    return (
        bytes(value).decode() if isinstance(value, bytes | bytearray | memoryview) else str(value)
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _record(row: Sequence[Any], failed_ids: Sequence[str] = ()) -> BatchRecord:
    return BatchRecord(
        id=_text(row[0]), name=_text(row[1]), total_jobs=int(row[2]), pending_jobs=int(row[3]),
        failed_jobs=int(row[4]), allow_failures=bool(row[5]),
        options=_decode_options.decode(_text(row[6]).encode()), created_at=float(row[7]),
        cancelled_at=_float(row[8]), finished_at=_float(row[9]), failed_job_ids=tuple(failed_ids),
        fired=_fired(row[10:13], lambda token: token is not None),
    )  # fmt: skip


def _fired(tokens: Sequence[Any], test: Callable[[Any], bool]) -> frozenset[str]:
    """The events whose token (then, catch, finally) passes ``test``."""
    return frozenset(event for event, token in zip(EVENTS, tokens, strict=True) if test(token))


class SQLBatchStore:
    def __init__(self, driver: DatabaseDriver) -> None:
        self._driver = driver
        #: PostgreSQL and SQLite 3.35+ return the updated row with the update (one round trip
        #: less per job); MariaDB/MySQL read it back with a SELECT in the same transaction
        self._returning = driver.dialect.name == "postgresql" or (
            driver.dialect.name == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)
        )
        self._cancelled: set[str] = set()

    def _sql(self, statement: str) -> str:
        return self._driver.sql(statement)

    def _now(self) -> float:
        """The database's clock, inside the caller's transaction."""
        return self._driver.dialect.now(self._driver._connection())

    # --- writes -------------------------------------------------------------------------------
    def create(self, record: BatchRecord, messages: Sequence[Message]) -> bool:
        def write(cur: Any) -> bool:
            cur.execute(self._sql("SELECT 1 FROM conveyor_batches WHERE id = ?"), (record.id,))
            if cur.fetchone() is not None:
                return False
            fired = ["created" if event in record.fired else None for event in EVENTS]
            cur.execute(
                self._sql(f"INSERT INTO conveyor_batches ({_COLUMNS}) VALUES"
                          " (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)"),
                (record.id, record.name, record.total_jobs, record.pending_jobs,
                 record.failed_jobs, int(record.allow_failures),
                 _options.encode(record.options).decode(), self._now(), record.finished_at,
                 *fired),
            )  # fmt: skip
            if messages:
                self._driver.insert_messages(cur, messages)
            return True

        return self._driver.run(write)

    def add(self, batch_id: str, messages: Sequence[Message], count: int) -> bool:
        def write(cur: Any) -> bool:
            cur.execute(
                self._sql(
                    "UPDATE conveyor_batches SET total_jobs = total_jobs + ?,"
                    " pending_jobs = pending_jobs + ? WHERE id = ? AND finished_at IS NULL"
                ),
                (count, count, batch_id),
            )
            if cur.rowcount != 1:
                return False
            self._driver.insert_messages(cur, messages)
            return True

        return bool(messages) and self._driver.run(write)

    def cancel(self, batch_id: str) -> bool:
        def write(cur: Any) -> bool:
            cur.execute(
                self._sql(
                    "UPDATE conveyor_batches SET cancelled_at = ? WHERE id = ?"
                    " AND cancelled_at IS NULL"
                ),
                (self._now(), batch_id),
            )
            return bool(cur.rowcount == 1)

        return self._driver.run(write)

    def delete(self, batch_id: str) -> bool:
        def write(cur: Any) -> bool:
            cur.execute(
                self._sql("DELETE FROM conveyor_batch_failures WHERE batch_id = ?"), (batch_id,)
            )
            cur.execute(self._sql("DELETE FROM conveyor_batches WHERE id = ?"), (batch_id,))
            return bool(cur.rowcount == 1)

        return self._driver.run(write)

    def prune(
        self,
        finished_before: float | None,
        unfinished_before: float | None = None,
        cancelled_before: float | None = None,
    ) -> int:
        conditions = [
            (cond, value)
            for cond, value in (
                ("finished_at IS NOT NULL AND finished_at < ?", finished_before),
                ("finished_at IS NULL AND created_at < ?", unfinished_before),
                ("cancelled_at IS NOT NULL AND created_at < ?", cancelled_before),
            )
            if value is not None
        ]
        if not conditions:
            return 0
        where = " OR ".join(f"({cond})" for cond, _ in conditions)
        params = [value for _, value in conditions]

        def write(cur: Any) -> int:
            cur.execute(
                self._sql(
                    "DELETE FROM conveyor_batch_failures WHERE batch_id IN"
                    f" (SELECT id FROM conveyor_batches WHERE {where})"
                ),
                params,
            )
            cur.execute(self._sql(f"DELETE FROM conveyor_batches WHERE {where}"), params)
            return int(cur.rowcount)

        return self._driver.run(write)

    # --- job outcomes -------------------------------------------------------------------------
    def settle(self, reservation: Reservation, settlement: Settlement, fire: Fire) -> bool:
        # a worker-side write, like an ack: lost in a server crash, the job (and its count)
        # comes back whole and runs again, so the commit need not wait for the disk
        return self._driver.run(
            lambda cur: self._settle_in(cur, reservation, settlement, fire), durable=False
        )

    def settle_and_reserve(
        self,
        reservation: Reservation,
        settlement: Settlement,
        fire: Fire,
        queues: Sequence[str],
        lease: float,
    ) -> tuple[bool, Reservation | None]:
        """Settle and claim the next job in one transaction, as a plain acknowledgement does."""

        token = uuid.uuid4().hex  # kept across retries: a claim whose answer was lost is found

        def both(cur: Any) -> tuple[bool, Reservation | None]:
            settled = self._settle_in(cur, reservation, settlement, fire)
            return settled, self._driver.claim_in(queues, lease, token)

        return self._driver.run(both, durable=False)

    def _settle_in(
        self, cur: Any, reservation: Reservation, settlement: Settlement, fire: Fire
    ) -> bool:
        cur.execute(
            self._sql("DELETE FROM conveyor_jobs WHERE id = ? AND token = ?"),
            (reservation.id, reservation.token),
        )
        if cur.rowcount != 1:
            return False
        if settlement.record is not None:
            self._driver.failed.insert(cur, settlement.record)
        messages = list(settlement.successors if settlement.succeeded else settlement.on_failure)
        if settlement.batch_id is not None:
            messages.extend(self._count(cur, reservation.id, settlement, fire))
        if messages:
            self._driver.insert_messages(cur, messages)
        return True

    def _count(self, cur: Any, job_id: str, settlement: Settlement, fire: Fire) -> list[Message]:
        """Update the counters in one statement; return the messages of the events it fired."""
        batch_id = settlement.batch_id
        # the worker's clock: these timestamps are only shown, and reading the server's would
        # cost a round trip per job on some servers
        token, now = uuid.uuid4().hex, time.time()
        returning = f" RETURNING {_TOKENS}" if self._returning else ""
        if settlement.succeeded:
            cur.execute(self._sql(_SUCCEEDED + returning), (token, token, now, batch_id))
        else:
            new = self._record_failure(cur, str(batch_id), job_id, now)
            done = new + settlement.dropped
            cur.execute(
                self._sql(_FAILED + returning),
                (new, token, done, token, done, now, new, now, new, settlement.dropped, batch_id),
            )
        if not self._returning:
            cur.execute(
                self._sql(f"SELECT {_TOKENS} FROM conveyor_batches WHERE id = ?"), (batch_id,)
            )
        tokens = cur.fetchone()
        if tokens is None:
            return []
        fired = _fired(tokens, lambda mark: mark == token)
        if not fired:
            return []
        cur.execute(self._sql(f"{_SELECT} WHERE id = ?"), (batch_id,))
        return fire(
            _record(cur.fetchone(), self._failed_ids(cur, str(batch_id))), fired, settlement
        )

    def _record_failure(self, cur: Any, batch_id: str, job_id: str, now: float) -> int:
        """1 if this job is newly failed, 0 if it already counted as failed."""
        cur.execute(
            self._sql("SELECT 1 FROM conveyor_batch_failures WHERE batch_id = ? AND job_id = ?"),
            (batch_id, job_id),
        )
        if cur.fetchone() is not None:
            return 0
        cur.execute(
            self._sql(
                "INSERT INTO conveyor_batch_failures (batch_id, job_id, failed_at) VALUES (?, ?, ?)"
            ),
            (batch_id, job_id, now),
        )
        return 1

    def requeue(self, record: FailedRecord, batch_id: str, links: int) -> None:
        def write(cur: Any) -> None:
            self._driver.insert_messages(cur, [Message(record.uuid, record.queue, record.payload)])
            cur.execute(
                self._sql("DELETE FROM conveyor_failed_jobs WHERE uuid = ?"), (record.uuid,)
            )
            cur.execute(
                self._sql("DELETE FROM conveyor_batch_failures WHERE batch_id = ? AND job_id = ?"),
                (batch_id, record.uuid),
            )
            if cur.rowcount > 0:
                cur.execute(
                    self._sql(
                        "UPDATE conveyor_batches SET finished_at = NULL,"
                        " failed_jobs = failed_jobs - 1, pending_jobs = pending_jobs + ?"
                        " WHERE id = ?"
                    ),
                    (links, batch_id),
                )

        self._driver.run(write)

    # --- reads --------------------------------------------------------------------------------
    def _failed_ids(self, cur: Any, batch_id: str) -> list[str]:
        cur.execute(
            self._sql("SELECT job_id FROM conveyor_batch_failures WHERE batch_id = ? ORDER BY seq"),
            (batch_id,),
        )
        return [_text(r[0]) for r in cur.fetchall()]

    def find(self, batch_id: str) -> BatchRecord | None:
        def read(cur: Any) -> BatchRecord | None:
            cur.execute(self._sql(f"{_SELECT} WHERE id = ?"), (batch_id,))
            row = cur.fetchone()
            return None if row is None else _record(row, self._failed_ids(cur, batch_id))

        return self._driver.run(read, write=False)

    def cancelled(self, batch_id: str) -> bool:
        if batch_id in self._cancelled:  # a cancellation is for good: no need to read it again
            return True

        def read(cur: Any) -> bool:
            cur.execute(
                self._sql("SELECT cancelled_at FROM conveyor_batches WHERE id = ?"), (batch_id,)
            )
            row = cur.fetchone()
            return row is not None and row[0] is not None

        found = self._driver.run(read, write=False)
        if found:
            self._cancelled.add(batch_id)
        return found

    def page(self, limit: int = 50, before: float | None = None) -> list[BatchRecord]:
        def read(cur: Any) -> list[BatchRecord]:
            where, params = ("WHERE created_at < ?", [before]) if before is not None else ("", [])
            cur.execute(
                self._sql(f"{_SELECT} {where} ORDER BY created_at DESC LIMIT {int(limit)}"), params
            )
            return [_record(row) for row in cur.fetchall()]

        return self._driver.run(read, write=False)
