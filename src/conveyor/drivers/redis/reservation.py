"""A claimed Redis job. Every write is one script that first checks the reservation's token."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ...errors import ConnectionUnavailable
from ..base import FailedRecord, Message
from .codec import by_queue, pack_record, store_args
from .keys import QueueKeys

if TYPE_CHECKING:
    from .driver import RedisDriver

log = logging.getLogger("conveyor.redis")


class RedisReservation:
    __slots__ = ("_driver", "_keys", "_lease", "attempts", "id", "payload", "queue", "token")

    def __init__(
        self, driver: RedisDriver, keys: QueueKeys, id: str, payload: bytes, attempts: int,
        token: str, lease: float,
    ) -> None:  # fmt: skip
        self._driver = driver
        self._keys = keys
        self._lease = lease
        self.id = id
        self.queue = keys.queue
        self.payload = payload
        self.attempts = attempts
        self.token = token

    def ack(self, successors: Sequence[Message] = ()) -> bool:
        """Remove the job and store ``successors`` in the same script.

        On a cluster a successor whose queue lives on another slot cannot join that script:
        it is stored first, after renewing the lease (so the token is known to hold), then the
        job is removed. A crash in between can run the successor twice, never lose it.
        """
        k = self._keys
        keys = [*k.for_settle(), k.payload, k.attempts]
        args: list[Any] = [self.id, self.token]
        groups = by_queue(successors)
        elsewhere: list[Message] = []
        for queue, batch in groups.items():
            target = self._driver.keys(queue)
            if self._driver.conn.cluster and target.slot != k.slot:
                elsewhere += batch
                continue
            keys += target.for_store()
            args += [len(batch), *store_args(batch)]
        if groups:
            self._driver.register(groups)
        if elsewhere:
            if not self.extend(self._lease):
                return False
            self._driver.push_many(elsewhere)
        return bool(self._driver.conn.eval("ack", keys, args))

    def ack_and_reserve(
        self, queues: Sequence[str], lease: float
    ) -> tuple[bool, RedisReservation | None]:
        """Remove the job and claim the next from ``queues`` in one script: one round trip per
        job for a worker that does not prefetch (see ack_reserve.lua).

        On a cluster that holds only when every queue shares this job's slot; otherwise each
        step is its own call.
        """
        driver, k = self._driver, self._keys
        if driver.conn.cluster and any(driver.keys(q).slot != k.slot for q in queues):
            return self.ack(), driver.reserve(queues, lease)
        settle = ([*k.for_settle(), k.payload, k.attempts], [self.id, self.token])
        return driver.claim_after_ack(settle, queues, lease)

    def begin(self) -> bool:
        """Count the attempt of a prefetched job that starts now (see ``RedisDriver.prefetch``)."""
        k = self._keys
        args = [self.id, self.token, self.attempts, repr(float(self._lease))]
        keys = [k.token, k.attempts, k.reserved, k.pending]
        return bool(self._driver.conn.eval("begin", keys, args))

    def release(self, delay: float, payload: bytes | None = None) -> bool:
        k = self._keys
        keys = [*k.for_settle(), k.payload, k.delayed, k.notify]
        args: list[Any] = [self.id, self.token, repr(float(delay))]
        if payload is not None:
            args.append(payload)
        return bool(self._driver.conn.eval("release", keys, args))

    def extend(self, seconds: float) -> bool:
        k = self._keys
        args = [self.id, self.token, repr(float(seconds))]
        return bool(self._driver.conn.eval("extend", [k.reserved, k.token, k.pending], args))

    def fail(self, record: FailedRecord) -> bool:
        """Remove the job and write its failed record atomically.

        On one server that is a single script. On a cluster the record is parked in the
        queue's own slot by that script, then moved to the failed store; if the move cannot
        happen now it is finished by the next worker that reserves from this queue.
        """
        k = self._keys
        jobs = [*k.for_settle(), k.payload, k.attempts]
        packed = pack_record(record)
        conn = self._driver.conn
        if not conn.cluster:
            f = self._driver.failed.keys
            args = [self.id, self.token, record.uuid, record.queue, packed,
                    repr(record.failed_at), f.queue_prefix]  # fmt: skip
            return bool(conn.eval("fail", [*jobs, *f.store()], args))
        args = [self.id, self.token, record.uuid, packed]
        if not conn.eval("fail_handoff", [*jobs, k.handoff], args):
            return False
        try:
            self._driver.flush_handoff(self.queue)
        except ConnectionUnavailable as exc:
            log.warning("failed record of %s parked in its queue until the store is back: %s",
                        self.id, exc)  # fmt: skip
        return True
