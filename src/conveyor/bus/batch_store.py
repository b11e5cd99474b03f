"""The batch repository contract, and the records that cross it.

A store keeps one record per batch next to the connection's jobs, so that a job's outcome, its
batch's counters, the next link of its chain and the callbacks its outcome fires are written in
one atomic step (one transaction on SQL, one script on Redis): a worker killed at any point
leaves either all of it or none of it, and each callback fires exactly once.

What fires is decided from the counters the store returns; which messages a fired event
enqueues is decided by ``conveyor.bus`` (the ``Fire`` function the store is handed), so a store
only counts and stores.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..drivers.base import Driver, FailedRecord, Message, Reservation
from ..errors import ConveyorError

EVENTS = ("then", "catch", "finally")


@dataclass(frozen=True)
class BatchRecord:
    """A batch as stored. ``pending_jobs`` counts jobs not yet succeeded (failed ones included,
    as in Laravel); ``failed_jobs`` counts jobs failed now (a retry takes one back)."""

    id: str
    name: str
    total_jobs: int
    pending_jobs: int
    failed_jobs: int
    allow_failures: bool
    options: dict[str, Any]
    created_at: float
    cancelled_at: float | None = None
    finished_at: float | None = None
    failed_job_ids: tuple[str, ...] = ()
    #: the events that have fired (then / catch / finally)
    fired: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Settlement:
    """How a chained or batched job ended, and what must be stored with its acknowledgement."""

    batch_id: str | None
    #: set when the job failed for good: the failed-store record to write
    record: FailedRecord | None = None
    #: on success: the chain's next link
    successors: tuple[Message, ...] = ()
    #: on failure: the chain's catch callbacks
    on_failure: tuple[Message, ...] = ()
    #: on failure: links of the batch's chain that will now never run (counted as done)
    dropped: int = 0

    @property
    def succeeded(self) -> bool:
        return self.record is None


#: builds the messages that the events which just fired enqueue (callbacks, a chain's next link)
Fire = Callable[[BatchRecord, frozenset[str], Settlement | None], list[Message]]


class BatchStore(Protocol):
    def create(self, record: BatchRecord, messages: Sequence[Message]) -> bool:
        """Store the batch and its first messages in one write; False if the id exists."""
        ...

    def find(self, batch_id: str) -> BatchRecord | None: ...
    def cancelled(self, batch_id: str) -> bool: ...
    def page(self, limit: int = 50, before: float | None = None) -> list[BatchRecord]:
        """Batches newest first, created before ``before`` if given (without failed ids)."""
        ...

    def add(self, batch_id: str, messages: Sequence[Message], count: int) -> bool:
        """Store more jobs, counting ``count`` (chains count every link); False if the batch is
        finished or gone."""
        ...

    def cancel(self, batch_id: str) -> bool: ...
    def delete(self, batch_id: str) -> bool: ...
    def prune(
        self,
        finished_before: float | None,
        unfinished_before: float | None = None,
        cancelled_before: float | None = None,
    ) -> int: ...

    def settle(self, reservation: Reservation, settlement: Settlement, fire: Fire) -> bool:
        """Acknowledge or fail the job, count it, store successors and fired callbacks, at once.

        False, and nothing written, if the reservation's lease was lost meanwhile.
        """
        ...

    def requeue(self, record: FailedRecord, batch_id: str, links: int) -> None:
        """Put a failed job of the batch back (``conveyor retry``) and take its failure back;
        ``links`` chain links it had dropped count as pending again."""
        ...


def require_storage(driver: Driver) -> None:
    """Refuse the sync connection: it runs a job at dispatch, so no link could wait its turn."""
    from ..drivers.sync import SyncDriver

    if isinstance(driver, SyncDriver):
        raise ConveyorError(
            f"connection {driver.connection!r} runs each job when it is dispatched and stores "
            "nothing, so it cannot hold a chain or a batch; dispatch it on a connection that "
            "stores jobs (sqlite, postgresql, mysql)"
        )


#: one store per driver object: the Redis store caches each batch's (immutable) options
_stores: weakref.WeakKeyDictionary[Any, BatchStore] = weakref.WeakKeyDictionary()


def store_for(driver: Driver) -> BatchStore:
    """The batch store that lives beside a connection's jobs."""
    found = _stores.get(driver)
    if found is None:
        found = _stores[driver] = _open_store(driver)
    return found


def attach_store(driver: Driver, store: BatchStore) -> None:
    """Give a driver that keeps its jobs elsewhere (the recording fake of ``conveyor.testing``)
    the store its batches live in, for as long as the driver lives."""
    _stores[driver] = store


def _open_store(driver: Driver) -> BatchStore:
    from ..drivers.database.driver import DatabaseDriver

    if isinstance(driver, DatabaseDriver):
        from .sql_batch_store import SQLBatchStore

        return SQLBatchStore(driver)
    if type(driver).__name__ == "RedisDriver":
        from ..drivers.redis.driver import RedisDriver
        from .redis_batch_store import RedisBatchStore

        assert isinstance(driver, RedisDriver)
        return RedisBatchStore(driver)
    require_storage(driver)
    raise ConveyorError(
        f"connection {driver.connection!r} ({type(driver).__name__}) has no batch store yet; "
        "chains with a catch and batches run on sqlite, postgresql, mysql and redis connections"
    )
