"""The failed store on Redis, under the ``{prefix}`` hash tag so its scripts run on one slot.

Records are numbered from a counter, as Laravel's ``failed_jobs`` rows are, and indexed by id,
by failure time (for ``flush --older-than``), by uuid and per queue, so that every listing and
count is a range read rather than a scan.
"""

from __future__ import annotations

from ..base import FailedRecord, failed_id
from .codec import pack_record, unpack_record
from .connection import RedisConnection
from .keys import FailedKeys

FLUSH_BATCH = 500


class RedisFailedStore:
    def __init__(self, conn: RedisConnection, keys: FailedKeys) -> None:
        self.conn = conn
        self.keys = keys

    def record(self, record: FailedRecord) -> None:
        args = [record.uuid, record.queue, pack_record(record), repr(record.failed_at),
                self.keys.queue_prefix]  # fmt: skip
        self.conn.eval("failed_record", self.keys.store(), args)

    def get(self, id_or_uuid: str) -> FailedRecord | None:
        client, k = self.conn.client, self.keys

        def read() -> FailedRecord | None:
            number = failed_id(id_or_uuid)
            ids = [] if number is None else [str(number)]
            by_uuid = client.hget(k.uuids, id_or_uuid)
            if by_uuid is not None:
                ids.append(by_uuid.decode())
            for key in ids:
                packed = client.hget(k.records, key)
                if packed is not None:
                    return unpack_record(packed, int(key))
            return None

        return self.conn.run(read)

    def page(
        self, queue: str | None = None, before: int | None = None, limit: int = 100
    ) -> list[FailedRecord]:
        top = "+inf" if before is None else str(int(before))
        flat = self.conn.eval(
            "failed_page", [self.keys.index(queue), self.keys.records], [top, int(limit)]
        )
        return [unpack_record(flat[i + 1], int(flat[i])) for i in range(0, len(flat), 2)]

    def count(self, queue: str | None = None) -> int:
        return int(self.conn.run(lambda: self.conn.client.zcard(self.keys.index(queue))))

    def forget(self, id_or_uuid: str) -> bool:
        args = [id_or_uuid, self.keys.queue_prefix]
        return bool(self.conn.eval("failed_forget", self.keys.store(), args))

    def flush(self, older_than: float | None = None) -> int:
        """Delete in batches, so a large store never holds Redis for long."""
        bound = "+inf" if older_than is None else repr(float(older_than))
        total = 0
        while True:
            args = [bound, self.keys.queue_prefix, FLUSH_BATCH]
            done = int(self.conn.eval("failed_flush", self.keys.store(), args))
            total += done
            if done < FLUSH_BATCH:
                return total
