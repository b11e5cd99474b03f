"""The batch store on Redis (one server, or Sentinel): one Lua script per job outcome.

A batch is a hash (counters, options, one token field per event, set with ``HSETNX`` by the
script that fires it) plus a sorted set of its failed job ids. ``batch_settle.lua`` removes the
job (or moves it to the failed store), updates the counters and stores the messages of the events
it fired, all in one script. The script cannot call back into Python, so the messages every event
*could* enqueue are built before the call and sent along by section; the script stores only the
sections that fired. The batch's options (its callbacks) never change, so they are read once per
batch and process.

Redis Cluster is refused: a job's queue, its batch and the failed store live in different slots,
where no single script can reach them all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import msgspec

from ..drivers.base import FailedRecord, Message, Reservation
from ..drivers.redis.codec import by_queue, pack_record, store_args
from ..drivers.redis.scripts import Script
from ..errors import ConveyorError
from .batch_store import EVENTS, BatchRecord, Fire, Settlement

if TYPE_CHECKING:
    from ..drivers.redis.driver import RedisDriver

SCRIPTS = ("batch_settle", "batch_create", "batch_add", "batch_cancel", "batch_requeue")
_INCLUDE = "--! include "
_json = msgspec.json.Encoder()
_decode_options = msgspec.json.Decoder(dict[str, Any])
log = logging.getLogger("conveyor.bus")


def _source(name: str) -> str:
    """A script of this package, with the driver's Lua libraries pulled in where it asks."""
    own = resources.files(__package__).joinpath(f"lua/{name}.lua").read_text(encoding="utf-8")
    lib = resources.files("conveyor.drivers.redis")
    lines = [
        lib.joinpath(line[len(_INCLUDE) :].strip()).read_text(encoding="utf-8").rstrip()
        if line.startswith(_INCLUDE)
        else line
        for line in own.splitlines()
    ]
    return "\n".join(lines) + "\n"


def _float(value: bytes | None) -> float | None:
    return None if value is None else float(value)


def _record(batch_id: str, data: dict[bytes, bytes], failed: Sequence[bytes]) -> BatchRecord:
    def get(key: str) -> bytes | None:
        return data.get(key.encode())

    return BatchRecord(
        id=batch_id, name=(get("name") or b"").decode(), total_jobs=int(get("total") or 0),
        pending_jobs=int(get("pending") or 0), failed_jobs=int(get("failed") or 0),
        allow_failures=get("allow_failures") == b"1",
        options=_decode_options.decode(get("options") or b"{}"),
        created_at=float(get("created_at") or 0), cancelled_at=_float(get("cancelled_at")),
        finished_at=_float(get("finished_at")), failed_job_ids=tuple(f.decode() for f in failed),
        fired=frozenset(e for e in EVENTS if get(f"{e}_token") is not None),
    )  # fmt: skip


class RedisBatchStore:
    def __init__(self, driver: RedisDriver) -> None:
        if driver.conn.cluster:
            raise ConveyorError(
                f"connection {driver.connection!r} is a Redis Cluster: chains with a catch and "
                "batches need a single Redis server (or Sentinel), because a job, its batch and "
                "the failed store must change in one script and a cluster spreads them over slots"
            )
        self._driver = driver
        self._conn = driver.conn
        self._tag = f"{{{driver.prefix}}}"
        self._index = f"{self._tag}:batches"
        self._options: dict[str, dict[str, Any]] = {}
        self._cancelled: set[str] = set()
        for name in SCRIPTS:  # joins the driver's scripts, so a server restart reloads them too
            if name not in self._conn.scripts:
                source = _source(name)
                sha = hashlib.sha1(source.encode()).hexdigest()
                self._conn.scripts[name] = Script(name, source, sha)

    def _keys(self, batch_id: str) -> list[str]:
        return [f"{self._tag}:batch:{batch_id}", f"{self._tag}:batch:{batch_id}:failures"]

    def _store_args(
        self, messages: Sequence[Message], section: str | None
    ) -> tuple[list[str], list[Any]]:
        """Keys and arguments that store ``messages``, per queue (lib_store.lua's layout)."""
        groups = by_queue(messages)
        if groups:
            self._driver.register(groups)
        keys: list[str] = []
        args: list[Any] = []
        for queue, batch in groups.items():
            keys += self._driver.keys(queue).for_store()
            args += [*(() if section is None else (section,)), len(batch), *store_args(batch)]
        return keys, args

    # --- writes -------------------------------------------------------------------------------
    def create(self, record: BatchRecord, messages: Sequence[Message]) -> bool:
        fields: dict[str, Any] = {
            "name": record.name, "total": record.total_jobs, "pending": record.pending_jobs,
            "failed": record.failed_jobs, "allow_failures": int(record.allow_failures),
            "options": _json.encode(record.options),
        }  # fmt: skip
        if record.finished_at is not None:
            fields["finished_at"] = repr(record.finished_at)
        fields.update({f"{event}_token": "created" for event in record.fired})
        keys, args = self._store_args(messages, None)
        pairs = [item for pair in fields.items() for item in pair]
        head = [record.id, len(fields), *pairs]
        return bool(
            self._conn.eval(
                "batch_create", [*self._keys(record.id)[:1], self._index, *keys], [*head, *args]
            )
        )

    def add(self, batch_id: str, messages: Sequence[Message], count: int) -> bool:
        if not messages:
            return False
        keys, args = self._store_args(messages, None)
        return bool(self._conn.eval("batch_add", [self._keys(batch_id)[0], *keys], [count, *args]))

    def cancel(self, batch_id: str) -> bool:
        return bool(self._conn.eval("batch_cancel", self._keys(batch_id)[:1], []))

    def delete(self, batch_id: str) -> bool:
        client = self._conn.client
        keys = self._keys(batch_id)

        def drop() -> bool:
            pipe = client.pipeline(transaction=True)
            pipe.delete(keys[0])
            pipe.delete(keys[1])
            pipe.zrem(self._index, batch_id)
            return bool(pipe.execute()[0])

        return self._conn.run(drop)

    def prune(
        self,
        finished_before: float | None,
        unfinished_before: float | None = None,
        cancelled_before: float | None = None,
    ) -> int:
        cutoffs = [
            c for c in (finished_before, unfinished_before, cancelled_before) if c is not None
        ]
        if not cutoffs:
            return 0
        client = self._conn.client
        ids = [
            i.decode()
            for i in self._conn.run(lambda: client.zrangebyscore(self._index, "-inf", max(cutoffs)))
        ]
        pruned = 0
        for batch_id in ids:
            record = self.find(batch_id)
            if record is None:
                self._conn.run(lambda b=batch_id: client.zrem(self._index, b))  # type: ignore[misc]
                continue
            if _prunable(record, finished_before, unfinished_before, cancelled_before):
                pruned += self.delete(batch_id)
        return pruned

    # --- job outcomes -------------------------------------------------------------------------
    def settle(self, reservation: Reservation, settlement: Settlement, fire: Fire) -> bool:
        driver, record = self._driver, settlement.record
        queue = driver.keys(reservation.queue)
        failed = driver.failed.keys
        keys = [*queue.for_settle(), queue.payload, queue.attempts, *failed.store()]
        keys += self._keys(settlement.batch_id or "-")
        args: list[Any] = [
            reservation.id, reservation.token, "ok" if record is None else "failed",
            settlement.dropped, "1" if settlement.batch_id else "0",
        ]  # fmt: skip
        if record is None:
            args += ["", "", "", "0", failed.queue_prefix]
        else:
            args += [record.uuid, record.queue, pack_record(record), repr(record.failed_at),
                     failed.queue_prefix]  # fmt: skip
        always = settlement.successors if record is None else settlement.on_failure
        for section, messages in [("always", list(always)), *self._candidates(settlement, fire)]:
            more_keys, more_args = self._store_args(messages, section)
            keys += more_keys
            args += more_args
        settled = int(self._conn.eval("batch_settle", keys, args))
        if settled == 2:
            log.warning(
                "batch %s: its counters are not numbers (corrupt data in Redis); job %s was"
                " settled without counting it, and no batch callback fired",
                settlement.batch_id, reservation.id,
            )  # fmt: skip
        return bool(settled)

    def _candidates(self, settlement: Settlement, fire: Fire) -> list[tuple[str, list[Message]]]:
        """The messages of every event this outcome could fire; the script keeps those that do."""
        if settlement.batch_id is None:
            return []
        options = self._options_of(settlement.batch_id)
        if options is None:
            return []
        base = BatchRecord(settlement.batch_id, "", 0, 0, 0, False, options, 0.0)
        found = []
        if settlement.succeeded and options.get("then"):
            found.append(("then", fire(base, frozenset({"then"}), settlement)))
        if not settlement.succeeded and options.get("catch"):
            found.append(("catch", fire(base, frozenset({"catch"}), settlement)))
        if options.get("finally") or options.get("chain"):
            cancelled = dataclasses.replace(base, cancelled_at=0.0)
            found.append(("finally", fire(base, frozenset({"finally"}), settlement)))
            found.append(("finally_cancelled", fire(cancelled, frozenset({"finally"}), settlement)))
        return found

    def _options_of(self, batch_id: str) -> dict[str, Any] | None:
        found = self._options.get(batch_id)
        if found is None:
            key = self._keys(batch_id)[0]
            raw = self._conn.run(lambda: self._conn.client.hget(key, "options"))
            if raw is None:
                return None
            found = self._options[batch_id] = _decode_options.decode(raw)
            if len(self._options) > 1000:
                self._options.pop(next(iter(self._options)))
        return found

    def requeue(self, record: FailedRecord, batch_id: str, links: int) -> None:
        driver = self._driver
        driver.register([record.queue])
        keys = [
            *self._keys(batch_id),
            *driver.failed.keys.store(),
            *driver.keys(record.queue).for_store(),
        ]
        args = [record.uuid, record.payload, "0", links, driver.failed.keys.queue_prefix]
        self._conn.eval("batch_requeue", keys, args)

    # --- reads --------------------------------------------------------------------------------
    def find(self, batch_id: str) -> BatchRecord | None:
        client = self._conn.client
        keys = self._keys(batch_id)

        def read() -> list[Any]:
            pipe = client.pipeline(transaction=True)
            pipe.hgetall(keys[0])
            pipe.zrange(keys[1], 0, -1)
            return list(pipe.execute())

        data, failed = self._conn.run(read)
        return _record(batch_id, data, failed) if data else None

    def cancelled(self, batch_id: str) -> bool:
        if batch_id in self._cancelled:  # a cancellation is for good: no need to read it again
            return True
        key = self._keys(batch_id)[0]
        found = self._conn.run(lambda: self._conn.client.hget(key, "cancelled_at")) is not None
        if found:
            self._cancelled.add(batch_id)
        return found

    def page(self, limit: int = 50, before: float | None = None) -> list[BatchRecord]:
        client = self._conn.client
        top = "+inf" if before is None else f"({before!r}"

        def read() -> list[BatchRecord]:
            ids = [
                i.decode()
                for i in client.zrevrangebyscore(self._index, top, "-inf", start=0, num=limit)
            ]
            pipe = client.pipeline(transaction=False)
            for batch_id in ids:
                pipe.hgetall(self._keys(batch_id)[0])
            return [_record(i, d, ()) for i, d in zip(ids, pipe.execute(), strict=True) if d]

        return self._conn.run(read)


def _prunable(
    record: BatchRecord, finished: float | None, unfinished: float | None, cancelled: float | None
) -> bool:
    if record.finished_at is not None:
        if finished is not None and record.finished_at < finished:
            return True
    elif unfinished is not None and record.created_at < unfinished:
        return True
    return (
        cancelled is not None and record.cancelled_at is not None and record.created_at < cancelled
    )
