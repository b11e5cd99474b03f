"""Operations on the failed-jobs store that every backend shares: retry puts a job back."""

from __future__ import annotations

from ..drivers.base import Driver, FailedRecord, Message


def retry(driver: Driver, record: FailedRecord) -> str:
    """Queue the failed job again with fresh attempts, then drop its failed record.

    The push comes first: a crash in between leaves a duplicate failed record, never a lost job.
    """
    driver.push(Message(record.uuid, record.queue, record.payload))
    driver.failed.forget(record.uuid)
    return record.uuid


def retry_all(driver: Driver, queue: str | None = None, page: int = 500) -> int:
    count = 0
    while True:
        batch = driver.failed.page(queue=queue, limit=page)
        if not batch:
            return count
        for record in batch:
            retry(driver, record)
            count += 1
