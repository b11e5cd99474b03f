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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..drivers.base import FailedRecord, Message, Reservation

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
