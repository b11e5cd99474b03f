"""The driver contract every backend implements, and the records that cross it.

A driver stores and moves opaque payloads; it never decodes them and never decides policy.
Every write on a reservation is conditional on the reservation's token, so a worker that lost
its lease (it stalled, the job was re-claimed) cannot acknowledge or fail someone else's run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import msgspec

from ..text import storable


class Message(msgspec.Struct, frozen=True):
    """One job to store: the envelope already encoded.

    A struct rather than a dataclass: made once per dispatched job, and a frozen dataclass's
    constructor costs as much as encoding the job's arguments.
    """

    id: str
    queue: str
    payload: bytes
    delay: float = 0.0


@dataclass(frozen=True)
class QueueSize:
    pending: int = 0
    delayed: int = 0
    reserved: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.delayed + self.reserved


@dataclass(frozen=True)
class FailedRecord:
    """A job that failed for good, as the failed store keeps it (Laravel's failed_jobs row)."""

    uuid: str
    connection: str
    queue: str
    payload: bytes
    exception: str
    failed_at: float
    id: int | None = None

    def __post_init__(self) -> None:
        # whatever the job raised, its text is one every backend stores (PostgreSQL refuses
        # NUL; no backend takes a lone surrogate) and of a bounded size
        object.__setattr__(self, "exception", storable(self.exception))


#: the largest id a failed store hands out: the SQL stores' 64-bit signed integer column
MAX_FAILED_ID = 2**63 - 1


def failed_id(id_or_uuid: str) -> int | None:
    """The numeric id ``id_or_uuid`` spells, or ``None`` when it can only be a uuid.

    The one place a user's id is read: ``str.isdigit`` is true for ``²`` (which ``int`` refuses),
    SQLite and PostgreSQL overflow past 64 bits, and ``int`` of over 4300 digits raises.
    """
    if not (id_or_uuid.isascii() and id_or_uuid.isdigit()) or len(id_or_uuid) > 19:
        return None
    number = int(id_or_uuid)
    return number if number <= MAX_FAILED_ID else None


@dataclass(frozen=True)
class WorkerInfo:
    """A worker's heartbeat, so ``conveyor status`` can say whether anyone is consuming."""

    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    started_at: float
    last_seen: float
    processed: int = 0
    current_job: str | None = None


@runtime_checkable
class Reservation(Protocol):
    """A claimed job. ``attempts`` already counts this claim."""

    @property
    def id(self) -> str: ...
    @property
    def queue(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def attempts(self) -> int: ...
    @property
    def token(self) -> str: ...

    def ack(self, successors: Sequence[Message] = ()) -> bool:
        """Remove the job and store ``successors`` (a chain's next link) in the same atomic step.

        False, and nothing stored, if the lease was lost meanwhile.
        """
        ...

    def release(self, delay: float, payload: bytes | None = None) -> bool:
        """Make the job available again after ``delay`` s, optionally with a new payload."""
        ...

    def fail(self, record: FailedRecord) -> bool:
        """Remove the job and write the failed record atomically."""
        ...

    def extend(self, seconds: float) -> bool:
        """Renew the lease to ``seconds`` from now (authority's clock)."""
        ...


@runtime_checkable
class Prefetch(Protocol):
    """Optional on a driver: claim jobs ahead while one runs, without spending their attempts.

    A prefetch claims like ``reserve`` (no wait) but leaves the stored attempt count alone; the
    reservation's ``attempts`` is what the count will be once the job starts, and its
    ``begin()`` (or the next ``ack_many_and_claim``) counts it then. A prefetched claim the
    worker never starts (it stops, or dies and the lease runs out) goes back to the queue
    having cost nothing.

    ``ack_many_and_claim`` is a busy worker's one round trip: acknowledge the jobs ``done``,
    count the start of the prefetched ``begin``, and claim up to ``n`` jobs, atomically: with
    ``count`` the first one starts now (its attempt counted), the others are prefetches. It
    returns whether each of ``done`` was still held by its token, and the jobs claimed, fewer
    than ``n`` when the queues ran dry. A call retried after a lost reply claims the same jobs,
    not more.

    ``prefetch_depth`` is how many jobs a worker claims ahead unless told otherwise: as many as
    one round trip can claim cheaply.

    ``keep_acks``: whether a worker keeps its acknowledgements for a later round trip while
    half of its prefetched jobs are still queued, so that one round trip serves about half a
    queue of jobs. Right where a round trip is short next to the jobs left (Redis); where it
    is long (a SQL transaction), the executor would run dry meanwhile, and a worker keeps them
    only when its executor is already ahead of it (the next outcome is in).
    """

    prefetch_depth: int
    keep_acks: bool

    def ack_many_and_claim(
        self,
        done: Sequence[Reservation],
        begin: Reservation | None,
        queues: Sequence[str],
        lease: float,
        n: int,
        count: bool = False,
    ) -> tuple[list[bool], list[Reservation]]: ...


class FailedJobStore(Protocol):
    def record(self, record: FailedRecord) -> None: ...
    def get(self, id_or_uuid: str) -> FailedRecord | None: ...
    def page(
        self, queue: str | None = None, before: int | None = None, limit: int = 100
    ) -> list[FailedRecord]: ...
    def count(self, queue: str | None = None) -> int: ...
    def forget(self, id_or_uuid: str) -> bool: ...
    def flush(self, older_than: float | None = None) -> int: ...


class Driver(Protocol):
    """A connection's queue storage, its failed store and its small control plane."""

    connection: str

    @property
    def failed(self) -> FailedJobStore: ...

    def push(self, message: Message) -> None: ...
    def push_many(self, messages: Sequence[Message]) -> None:
        """Store all messages in one round trip (one transaction / pipeline)."""
        ...

    def reserve(self, queues: Sequence[str], lease: float, wait: float = 0.0) -> Reservation | None:
        """Claim the oldest available job of the first non-empty queue, waiting up to ``wait`` s."""
        ...

    def size(self, queue: str) -> QueueSize: ...
    def queues(self) -> list[str]: ...
    def clear(self, queue: str) -> int: ...

    def request_restart(self) -> float: ...
    def restart_requested_at(self) -> float | None: ...
    def heartbeat(self, info: WorkerInfo) -> None: ...
    def forget_worker(self, worker_id: str) -> None: ...
    def workers(self, seen_within: float) -> list[WorkerInfo]: ...

    def migrate(self) -> None: ...
    def close(self) -> None: ...
