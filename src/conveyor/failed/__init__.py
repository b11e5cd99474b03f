"""Operations on the failed-jobs store that every backend shares: retry puts a job back."""

from __future__ import annotations

import dataclasses
import time

import msgspec

from .. import envelope as envelope_mod
from ..drivers.base import Driver, FailedRecord, Message
from ..errors import PayloadError


def _fresh(payload: bytes) -> bytes:
    """Let the job start over, as Laravel's ``queue:retry`` does: its exception count is reset
    and a ``retry_until`` deadline gets the same window again from now, or the job would fail
    unrun. A payload that does not decode goes back as it is; the worker fails it with the reason.
    """
    try:
        env = envelope_mod.decode(payload)
    except PayloadError:
        return payload
    now = time.time()
    until = env.retry_until
    if until is not None and env.dispatched_at:
        until = now + max(0.0, until - env.dispatched_at)
    fresh = msgspec.structs.replace(env, exceptions=0, retry_until=until, dispatched_at=now)
    return envelope_mod.encode(fresh)


def retry(driver: Driver, record: FailedRecord) -> str:
    """Queue the failed job again with fresh attempts, then drop its failed record.

    The push comes first: a crash in between leaves a duplicate failed record, never a lost job.
    A job of a batch goes back through its batch store, which also takes its failure back.
    """
    from ..bus.settle import requeue_batched

    fresh = _fresh(record.payload)
    if requeue_batched(driver, dataclasses.replace(record, payload=fresh)):
        return record.uuid
    driver.push(Message(record.uuid, record.queue, fresh))
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
