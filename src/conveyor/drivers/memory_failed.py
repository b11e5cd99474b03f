"""An in-process failed store, for the sync connection and for tests."""

from __future__ import annotations

import itertools
from dataclasses import replace

from .base import FailedRecord


class MemoryFailedStore:
    def __init__(self) -> None:
        self._records: dict[int, FailedRecord] = {}
        self._ids = itertools.count(1)

    def record(self, record: FailedRecord) -> None:
        self._drop_uuid(record.uuid)
        new_id = next(self._ids)
        self._records[new_id] = replace(record, id=new_id)

    def _drop_uuid(self, uuid: str) -> None:
        for key, rec in list(self._records.items()):
            if rec.uuid == uuid:
                del self._records[key]

    def get(self, id_or_uuid: str) -> FailedRecord | None:
        for key, rec in self._records.items():
            if str(key) == id_or_uuid or rec.uuid == id_or_uuid:
                return rec
        return None

    def page(
        self, queue: str | None = None, before: int | None = None, limit: int = 100
    ) -> list[FailedRecord]:
        rows = [
            r for k, r in sorted(self._records.items(), reverse=True)
            if (queue is None or r.queue == queue) and (before is None or k < before)
        ]  # fmt: skip
        return rows[:limit]

    def count(self, queue: str | None = None) -> int:
        return len(self.page(queue, limit=len(self._records) or 1))

    def forget(self, id_or_uuid: str) -> bool:
        rec = self.get(id_or_uuid)
        if rec is None or rec.id is None:
            return False
        del self._records[rec.id]
        return True

    def flush(self, older_than: float | None = None) -> int:
        doomed = [
            k for k, r in self._records.items() if older_than is None or r.failed_at < older_than
        ]
        for key in doomed:
            del self._records[key]
        return len(doomed)
