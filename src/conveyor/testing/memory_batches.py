"""An in-memory batch store for the fake connections, with the SQL store's counting rules.

A batch dispatched while the queue is faked is created here and its jobs are recorded; when
``drain()`` runs them, each outcome is settled through the same ``bus_settlement`` a worker
uses, which counts it here and fires ``then`` / ``catch`` / ``finally`` under the rules of
``sql_batch_store`` (one event fires once; the first failure cancels unless failures are
allowed; a failed chain's dropped links count as done).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence

from ..bus.batch_store import BatchRecord, Fire, Settlement
from ..drivers.base import FailedRecord, Message, Reservation
from .recorder import FakeConnection


class MemoryBatchStore:
    def __init__(self, connection: FakeConnection) -> None:
        self._connection = connection
        self._lock = threading.RLock()
        self._records: dict[str, BatchRecord] = {}

    def create(self, record: BatchRecord, messages: Sequence[Message]) -> bool:
        with self._lock:
            if record.id in self._records:
                return False
            self._records[record.id] = record
            self._connection.record(messages)
            return True

    def find(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            return self._records.get(batch_id)

    def cancelled(self, batch_id: str) -> bool:
        found = self.find(batch_id)
        return found is not None and found.cancelled_at is not None

    def page(self, limit: int = 50, before: float | None = None) -> list[BatchRecord]:
        with self._lock:
            rows = [r for r in self._records.values() if before is None or r.created_at < before]
        rows.sort(key=lambda r: r.created_at, reverse=True)
        return [dataclasses.replace(r, failed_job_ids=()) for r in rows[:limit]]

    def add(self, batch_id: str, messages: Sequence[Message], count: int) -> bool:
        with self._lock:
            found = self._records.get(batch_id)
            if not messages or found is None or found.finished_at is not None:
                return False
            self._records[batch_id] = dataclasses.replace(
                found, total_jobs=found.total_jobs + count, pending_jobs=found.pending_jobs + count
            )
            self._connection.record(messages)
            return True

    def cancel(self, batch_id: str) -> bool:
        with self._lock:
            found = self._records.get(batch_id)
            if found is None or found.cancelled_at is not None:
                return False
            self._records[batch_id] = dataclasses.replace(found, cancelled_at=time.time())
            return True

    def delete(self, batch_id: str) -> bool:
        with self._lock:
            return self._records.pop(batch_id, None) is not None

    def prune(
        self,
        finished_before: float | None,
        unfinished_before: float | None = None,
        cancelled_before: float | None = None,
    ) -> int:
        def doomed(r: BatchRecord) -> bool:
            finished = r.finished_at
            created, cancelled = r.created_at, r.cancelled_at
            if finished is not None and finished_before is not None and finished < finished_before:
                return True
            if finished is None and unfinished_before is not None and created < unfinished_before:
                return True
            return (
                cancelled is not None
                and cancelled_before is not None
                and (created < cancelled_before)
            )

        with self._lock:
            gone = [key for key, r in self._records.items() if doomed(r)]
            for key in gone:
                del self._records[key]
            return len(gone)

    def settle(self, reservation: Reservation, settlement: Settlement, fire: Fire) -> bool:
        with self._lock:
            messages = list(
                settlement.successors if settlement.succeeded else settlement.on_failure
            )
            if settlement.batch_id is not None:
                messages.extend(self._count(reservation.id, settlement, fire))
            if settlement.record is None:
                return reservation.ack(messages)
            done = reservation.fail(settlement.record)
            self._connection.push_many(messages)
            return done

    def _count(self, job_id: str, settlement: Settlement, fire: Fire) -> list[Message]:
        """The counters moved as ``sql_batch_store``'s one ``UPDATE`` moves them."""
        batch_id = str(settlement.batch_id)
        r = self._records.get(batch_id)
        if r is None:
            return []
        now = time.time()
        if settlement.succeeded:
            fired = {"then"} if r.cancelled_at is None and r.pending_jobs <= 1 else set()
            last = r.pending_jobs - r.failed_jobs <= 1
            after = dataclasses.replace(r, pending_jobs=r.pending_jobs - 1)
        else:
            new = 0 if job_id in r.failed_job_ids else 1
            fired = {"catch"} if new else set()
            last = r.pending_jobs - r.failed_jobs <= new + settlement.dropped
            cancel = new and not r.allow_failures and r.cancelled_at is None
            after = dataclasses.replace(
                r, failed_jobs=r.failed_jobs + new,
                pending_jobs=r.pending_jobs - settlement.dropped,
                failed_job_ids=(*r.failed_job_ids, job_id) if new else r.failed_job_ids,
                cancelled_at=now if cancel else r.cancelled_at,
            )  # fmt: skip
        if last:
            fired.add("finally")
            after = dataclasses.replace(after, finished_at=after.finished_at or now)
        events = frozenset(fired) - r.fired
        after = self._records[batch_id] = dataclasses.replace(after, fired=r.fired | events)
        return fire(after, events, settlement) if events else []

    def requeue(self, record: FailedRecord, batch_id: str, links: int) -> None:
        with self._lock:
            self._connection.record([Message(record.uuid, record.queue, record.payload)])
            self._connection.failed.forget(record.uuid)
            found = self._records.get(batch_id)
            if found is None or record.uuid not in found.failed_job_ids:
                return
            self._records[batch_id] = dataclasses.replace(
                found, finished_at=None, failed_jobs=found.failed_jobs - 1,
                pending_jobs=found.pending_jobs + links,
                failed_job_ids=tuple(i for i in found.failed_job_ids if i != record.uuid),
            )  # fmt: skip
