"""The Redis driver: per queue a pending list, a delayed and a reserved zset, and hashes for
payloads, attempts and tokens, all moved by Lua scripts so every step is atomic.

The reserve script is its own sweeper: before claiming it moves due delayed jobs and expired
reservations back to the pending list, so no separate process is needed to recover the jobs of
a dead worker. An idle worker blocks on the queue's notify list, which every push feeds, and
so starts a new job within a round trip of its dispatch without polling.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...errors import ConnectionUnavailable, StorageUnavailable
from ..base import FailedRecord, Message, QueueSize, WorkerInfo
from .codec import by_queue, pack_info, store_args, unpack_info, unpack_record
from .connection import ENDS_A_WAIT, RedisConnection
from .failed import RedisFailedStore
from .keys import ControlKeys, FailedKeys, QueueKeys
from .reservation import RedisReservation

log = logging.getLogger("conveyor.redis")

#: jobs per push script call: a bulk dispatch is cut into calls that each hold Redis briefly
CHUNK = 1000
#: delayed jobs and expired leases the reserve script moves per queue per call
MIGRATE_LIMIT = 100
#: a worker not seen for this long is dropped from the heartbeat table
FORGET_WORKERS_AFTER = 24 * 3600.0
#: slice of a blocking wait when a cluster worker's queues live on several slots
CLUSTER_SLICE = 0.1


class RedisDriver:
    #: jobs a worker claims ahead by default (``drivers.base.Prefetch``): claims are cheap
    #: inside one script, and with sixteen queued one round trip acknowledges and tops up
    #: about eight jobs (see ``worker.loop.Worker._defer``)
    prefetch_depth = 16
    keep_acks = True

    def __init__(
        self, connection: str, conn: RedisConnection, *, prefix: str = "conveyor",
        block_for: float | None = None,
    ) -> None:  # fmt: skip
        self.connection = connection
        self.conn = conn
        self.prefix = prefix
        self.control = ControlKeys.of(prefix)
        self.failed = RedisFailedStore(conn, FailedKeys.of(prefix))
        self.block_cap = min(block_for, conn.block_cap) if block_for else conn.block_cap
        self._keys: dict[str, QueueKeys] = {}
        self._reserve_keys_of: dict[tuple[str, ...], list[str]] = {}
        self._registered: set[str] = set()
        self._turn = 0
        #: per thread: the token of a claim whose reply never came (a driver serves threads)
        self._pending = threading.local()

    def keys(self, queue: str) -> QueueKeys:
        found = self._keys.get(queue)
        if found is None:
            found = self._keys[queue] = QueueKeys.of(self.prefix, queue)
        return found

    # --- queue ------------------------------------------------------------------------------
    def push(self, message: Message) -> None:
        if message.queue not in self._registered:
            self.register([message.queue])
        self.conn.eval("push", self.keys(message.queue).for_store(), store_args((message,)))

    def push_many(self, messages: Sequence[Message]) -> None:
        """Store every message; a message whose id is already stored is skipped, not doubled.

        That makes a push retried after a lost reply safe. On one server the whole batch goes
        in one pipeline; on a cluster, one script call per queue and chunk.
        """
        if not messages:
            return
        groups = by_queue(messages)
        self.register(groups)
        calls = [
            (self.keys(queue).for_store(), store_args(batch[i : i + CHUNK]))
            for queue, batch in groups.items()
            for i in range(0, len(batch), CHUNK)
        ]
        if self.conn.cluster:
            for keys, args in calls:
                self.conn.eval("push", keys, args)
        else:
            self.conn.eval_many("push", calls)

    def register(self, queues: Sequence[str] | dict[str, Any]) -> None:
        """Remember queue names for ``queues()``; once per name and process is enough."""
        new = [q for q in queues if q not in self._registered]
        if new:
            self.conn.run(lambda: self.conn.client.sadd(self.control.queues, *new))
            self._registered.update(new)

    def reserve(
        self, queues: Sequence[str], lease: float, wait: float = 0.0
    ) -> RedisReservation | None:
        deadline = time.monotonic() + wait
        found, soonest = self._claim(queues, lease)
        while found is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            pause = min(remaining, self.block_cap, soonest if soonest >= 0 else remaining)
            found, soonest = self._wait_and_claim(queues, lease, pause)
        return found

    def _wait_and_claim(
        self, queues: Sequence[str], lease: float, seconds: float
    ) -> tuple[RedisReservation | None, float]:
        """Wait up to ``seconds`` for a wake-up token on the queues' notify lists, then claim.

        On one server the wait (BLPOP) and the claim travel in one write: Redis runs the claim
        the moment the wait ends, so a worker woken by a dispatch needs no second round trip.
        """
        if seconds < 0.001:
            return self._claim(queues, lease)
        if self.conn.cluster:
            self._block(queues, seconds)
            return self._claim(queues, lease)
        notify = [self.keys(q).notify for q in queues]
        return self._claim_with(
            queues, lease, lambda k, a: self.conn.eval_after_wait(notify, seconds, "reserve", k, a)
        )

    def _plain_claim(self, keys: list[str], args: list[Any]) -> Any:
        return self.conn.eval("reserve", keys, args)

    def _claim(
        self, queues: Sequence[str], lease: float, count: bool = True
    ) -> tuple[RedisReservation | None, float]:
        """One reserve script call per group of queues: all at once on one server, one by one
        (in priority order) on a cluster, where each queue may live on another node."""
        groups = [(q,) for q in queues] if self.conn.cluster else [queues]
        soonest = -1.0
        for group in groups:
            found, due = self._claim_with(group, lease, self._plain_claim, count)
            if found is not None:
                return found, soonest
            if due >= 0 and (soonest < 0 or due < soonest):
                soonest = due
        return None, soonest

    def claim_after_ack(
        self, settle: tuple[list[str], list[Any]], queues: Sequence[str], lease: float
    ) -> tuple[bool, RedisReservation | None]:
        """Acknowledge a job and claim the next from ``queues`` in one script (one slot)."""
        acked = False

        def send(keys: list[str], args: list[Any]) -> Any:
            nonlocal acked
            reply = self.conn.eval("ack_reserve", [*settle[0], *keys], [*settle[1], *args])
            acked = bool(reply[0])
            return reply[1:]

        found, _ = self._claim_with(queues, lease, send)
        return acked, found

    def ack_many_and_claim(
        self,
        done: Sequence[RedisReservation],
        begin: RedisReservation | None,
        queues: Sequence[str],
        lease: float,
        n: int,
        count: bool = False,
    ) -> tuple[list[bool], list[RedisReservation]]:
        """Acknowledge the jobs ``done``, count the start of the prefetched ``begin``, and claim
        up to ``n`` jobs (with ``count`` the first starts now, the others are prefetches) in
        one script: a worker that prefetches several jobs pays one round trip for several (see
        ack_many_claim.lua).

        On a cluster that holds only when every key shares one slot; otherwise each step is
        its own call.
        """
        if self.conn.cluster and len(self._slots(done, begin, queues)) > 1:
            acked = [r.ack() for r in done]
            begun = begin is None or begin.begin()
            claimed = []
            for i in range(n):
                found = self._claim(queues, lease, count and i == 0)[0]
                if found is None:
                    break
                claimed.append(found)
        else:
            acked, begun, claimed = self._ack_many_and_claim(done, begin, queues, lease, n, count)
        if not begun and begin is not None:
            log.warning("job %s: lease was lost before it started; another worker may run it",
                        begin.id)  # fmt: skip
        return acked, claimed

    def _slots(
        self, done: Sequence[RedisReservation], begin: RedisReservation | None,
        queues: Sequence[str],
    ) -> set[int]:  # fmt: skip
        """The cluster slots one call would touch (hashing every key costs; one server only
        has one slot, so only a cluster asks)."""
        slots = {self.keys(q).slot for q in queues} | {r._keys.slot for r in done}
        if begin is not None:
            slots.add(begin._keys.slot)
        return slots

    def _ack_many_and_claim(
        self,
        done: Sequence[RedisReservation],
        begin: RedisReservation | None,
        queues: Sequence[str],
        lease: float,
        n: int,
        count: bool,
    ) -> tuple[list[bool], bool, list[RedisReservation]]:
        started = begin._keys if begin is not None else self.keys(queues[0])
        keys = [started.token, started.attempts, started.reserved, started.pending]
        args: list[Any] = []
        for r in done:
            k = r._keys
            keys += [*k.for_settle(), k.payload, k.attempts]
            args += [r.id, r.token]
        keys += self._reserve_keys(queues)
        # kept until a reply arrives: a retried call claims with the same tokens and gets the
        # jobs the lost call claimed (see lib_claim.lua)
        token = getattr(self._pending, "token", None) or os.urandom(16).hex()
        self._pending.token = token
        head = [repr(float(lease)), token, MIGRATE_LIMIT, int(count), n]
        head += [begin.id, begin.token, begin.attempts] if begin else ["", "", 0]
        reply = self.conn.eval("ack_many_claim", keys, [*head, len(done), *args])
        self._pending.token = None
        if reply[1]:
            self._flush_handoffs(queues)
        m = len(done)
        acked = [bool(flag) for flag in reply[2 : 2 + m]]
        claimed = []
        for i, at in enumerate(range(2 + m, len(reply), 4), start=1):
            q, job_id, payload, attempts = reply[at : at + 4]
            keys_of = self.keys(queues[int(q) - 1])
            found = RedisReservation(
                self, keys_of, job_id.decode(), payload, int(attempts), f"{token}:{i}", lease
            )
            if found.attempts < 0:
                self._fail_corrupt(found)
            else:
                claimed.append(found)
        return acked, bool(reply[0]), claimed

    def _claim_with(
        self,
        queues: Sequence[str],
        lease: float,
        send: Callable[[list[str], list[Any]], Any],
        count: bool = True,
    ) -> tuple[RedisReservation | None, float]:
        """Run a claiming script through ``send``; the job claimed, or when the next is due.

        A job claimed with a corrupt attempt count goes to the failed store, and the plain
        claim script is run again, in a loop: a queue of thousands of them is no recursion."""
        while True:
            # kept until a reply arrives: a call whose reply was lost is retried with the same
            # token, and the script then hands back what that call claimed (see lib_claim.lua)
            token = getattr(self._pending, "token", None) or os.urandom(16).hex()
            self._pending.token = token
            args = [repr(float(lease)), token, MIGRATE_LIMIT, int(count)]
            reply = send(self._reserve_keys(queues), args)
            self._pending.token = None
            if reply[-1]:
                self._flush_handoffs(queues)
            if not reply[0]:
                return None, float(reply[1])
            keys = self.keys(queues[int(reply[0]) - 1])
            found = RedisReservation(
                self, keys, reply[1].decode(), reply[2], int(reply[3]), token, lease
            )  # fmt: skip
            if found.attempts >= 0:
                return found, -1.0
            self._fail_corrupt(found)
            send = self._plain_claim

    def _fail_corrupt(self, found: RedisReservation) -> None:
        """Move a claimed job whose stored attempt count is not a number (attempts -1 from the
        claim, see lib_claim.lua) to the failed store with the reason, unrun: how often it ran
        is unknown, so neither running it nor resetting its count could keep its tries.

        Should this fail, the job stays reserved; its lease runs out and the next claim finds
        it again, so it is never lost.
        """
        reason = (
            "the job's stored attempt count is not a whole number (corrupt data in Redis); "
            "moved to the failed store without running it"
        )
        log.warning("job %s on %s: %s", found.id, found.queue, reason)
        payload = found.payload.decode("utf-8", "replace").encode()
        record = FailedRecord(found.id, self.connection, found.queue, payload, reason, time.time())
        try:
            found.fail(record)
        except ConnectionUnavailable as exc:
            log.warning("job %s: moving it to the failed store failed (%s); it stays reserved "
                        "until its lease runs out", found.id, exc)  # fmt: skip

    def _reserve_keys(self, queues: Sequence[str]) -> list[str]:
        group = tuple(queues)
        found = self._reserve_keys_of.get(group)
        if found is None:
            found = [k for q in group for k in self.keys(q).for_reserve()]
            self._reserve_keys_of[group] = found
        return found

    def _block(self, queues: Sequence[str], seconds: float) -> None:
        """Cluster mode: wait for a wake-up token (BLPOP) up to ``seconds``, on one slot's
        notify lists at a time when the queues span several slots.

        A failure or refusal here only ends the wait early: the next claim goes through the
        retry rule.
        """
        slots: dict[int, list[str]] = {}
        for q in queues:
            slots.setdefault(self.keys(q).slot, []).append(self.keys(q).notify)
        groups = list(slots.values())
        self._turn = (self._turn + 1) % len(groups)
        notify = groups[self._turn]
        if len(groups) > 1:
            seconds = min(seconds, CLUSTER_SLICE)
        try:
            self.conn.client.blpop(notify, timeout=seconds)
        except ENDS_A_WAIT as exc:
            log.debug("blocking wait on %s ended: %s", self.connection, exc)
            time.sleep(min(seconds, 0.05))

    def _flush_handoffs(self, queues: Sequence[str]) -> None:
        """Best effort: a claim already made must reach the worker even if this fails."""
        try:
            for queue in queues:
                self.flush_handoff(queue)
        except ConnectionUnavailable as exc:
            log.warning("parked failed records of %s stay parked for now: %s", queues, exc)

    def flush_handoff(self, queue: str) -> None:
        """Move failed records parked in a queue's slot to the failed store (cluster mode).

        Writing the record is idempotent per uuid, so a flush repeated by two workers, or
        after a crash between the two steps, leaves one record.
        """
        key = self.keys(queue).handoff
        parked: dict[bytes, bytes] = self.conn.run(lambda: self.conn.client.hgetall(key))
        for job_uuid, packed in parked.items():
            self.failed.record(unpack_record(packed))
            self.conn.run(lambda u=job_uuid: self.conn.client.hdel(key, u))  # type: ignore[misc]

    def size(self, queue: str) -> QueueSize:
        k = self.keys(queue)
        pending, delayed, reserved = self.conn.eval("size", [k.pending, k.delayed, k.reserved], [])
        return QueueSize(int(pending), int(delayed), int(reserved))

    def queues(self) -> list[str]:
        """Queues that hold jobs now, among every queue this prefix was ever pushed to."""
        names = sorted(
            n.decode()
            for n in self.conn.run(lambda: self.conn.client.smembers(self.control.queues))
        )

        def lengths() -> list[int]:
            pipe = self.conn.client.pipeline(transaction=False)
            for name in names:
                pipe.hlen(self.keys(name).payload)
            return [int(n) for n in pipe.execute()]

        return [name for name, n in zip(names, self.conn.run(lengths), strict=True) if n]

    def clear(self, queue: str) -> int:
        return int(self.conn.eval("clear", self.keys(queue).jobs(), []))

    # --- control plane ----------------------------------------------------------------------
    def now(self) -> float:
        """Redis server time: the clock leases and delays use."""
        seconds, micros = self.conn.run(self.conn.client.time)
        return float(seconds) + float(micros) / 1e6

    def request_restart(self) -> float:
        at = self.now()
        self.conn.run(lambda: self.conn.client.set(self.control.restart, repr(at)))
        return at

    def restart_requested_at(self) -> float | None:
        value = self.conn.run(lambda: self.conn.client.get(self.control.restart))
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise StorageUnavailable(
                f"{self.conn.describe}: the restart mark {value[:40]!r} is not a time"
            ) from None

    def heartbeat(self, info: WorkerInfo) -> None:
        packed = pack_info(info)
        stale = repr(info.last_seen - FORGET_WORKERS_AFTER)
        c = self.control
        self.conn.eval(
            "heartbeat", [c.workers, c.seen], [info.id, packed, repr(info.last_seen), stale]
        )

    def forget_worker(self, worker_id: str) -> None:
        def forget() -> None:
            pipe = self.conn.client.pipeline(transaction=False)
            pipe.hdel(self.control.workers, worker_id)
            pipe.zrem(self.control.seen, worker_id)
            pipe.execute()

        self.conn.run(forget)

    def workers(self, seen_within: float) -> list[WorkerInfo]:
        since = time.time() - seen_within
        c = self.control
        ids = self.conn.run(lambda: self.conn.client.zrangebyscore(c.seen, since, "+inf"))
        if not ids:
            return []
        packed = self.conn.run(lambda: self.conn.client.hmget(c.workers, ids))
        infos = [unpack_info(b) for b in packed if b]
        return sorted(infos, key=lambda w: w.started_at)

    def migrate(self) -> None:
        """Nothing to create on Redis; checks the server answers and loads the scripts."""
        self.conn.run(self.conn.load_scripts)

    def close(self) -> None:
        self.conn.close()
