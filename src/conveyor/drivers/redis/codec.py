"""What crosses into the scripts: job triples for lib_store.lua, and packed records.

Records are MessagePack, opaque to Lua: the scripts index them by id, uuid and time, which they
receive as separate arguments, and never look inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ..base import FailedRecord, Message, WorkerInfo

_Record = tuple[str, str, str, bytes, str, float]
_Info = tuple[str, str, int, list[str], float, float, int, str | None]
_encode = msgspec.msgpack.Encoder().encode
_decode_record = msgspec.msgpack.Decoder(_Record).decode
_decode_info = msgspec.msgpack.Decoder(_Info).decode


def store_args(messages: Sequence[Message]) -> list[Any]:
    """The (id, payload, delay seconds) triples lib_store.lua reads."""
    args: list[Any] = []
    for m in messages:
        args += (m.id, m.payload, repr(float(m.delay)) if m.delay else "0")
    return args


def by_queue(messages: Sequence[Message]) -> dict[str, list[Message]]:
    groups: dict[str, list[Message]] = {}
    for m in messages:
        groups.setdefault(m.queue, []).append(m)
    return groups


def pack_record(r: FailedRecord) -> bytes:
    return _encode((r.uuid, r.connection, r.queue, r.payload, r.exception, r.failed_at))


def unpack_record(data: bytes, id: int | None = None) -> FailedRecord:
    uuid, connection, queue, payload, exception, failed_at = _decode_record(data)
    return FailedRecord(uuid, connection, queue, payload, exception, failed_at, id)


def pack_info(i: WorkerInfo) -> bytes:
    return _encode((i.id, i.hostname, i.pid, list(i.queues), i.started_at, i.last_seen,
                    i.processed, i.current_job))  # fmt: skip


def unpack_info(data: bytes) -> WorkerInfo:
    id, hostname, pid, queues, started_at, last_seen, processed, current = _decode_info(data)
    return WorkerInfo(id, hostname, pid, tuple(queues), started_at, last_seen, processed, current)
