"""The recording driver: a connection that keeps what is dispatched to it instead of storing it.

``QueueFake`` puts one in place of every connection of the app, so every way of dispatching
(``Job.dispatch``, ``dispatch_many``, ``chain``, ``batch``, a job dispatching from inside a job,
another thread) reaches it with no special case: they all end in ``Driver.push`` /
``push_many`` or in the batch store. It keeps the encoded messages, exactly what a worker would
read; the assertions decode them back into jobs, which also proves every job survives the trip.
"""

from __future__ import annotations

import enum
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import envelope as envelope_mod
from ..drivers.base import Driver, FailedRecord, Message, QueueSize, Reservation
from ..drivers.in_process import InProcessControl
from ..drivers.memory_failed import MemoryFailedStore
from ..envelope import Envelope


class State(enum.Enum):
    PENDING = "pending"
    COMPLETED = "completed"
    DELETED = "deleted"
    FAILED = "failed"


@dataclass
class Recorded:
    """One dispatched job as the fake received it; ``drain()`` moves its ``state`` on."""

    connection: str
    message: Message
    envelope: Envelope
    seq: int
    #: the payload a worker would read next: a release may count an exception in it
    payload: bytes
    attempts: int = 0
    state: State = State.PENDING
    #: when it runs: a released job goes behind the jobs pending meanwhile, as it would on a queue
    turn: int = 0

    @property
    def id(self) -> str:
        return self.message.id

    @property
    def queue(self) -> str:
        return self.message.queue

    @property
    def delay(self) -> float:
        return self.message.delay

    @property
    def job_name(self) -> str:
        return self.envelope.job


class Recorder:
    """Every message of every fake connection of one ``QueueFake``, in dispatch order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Recorded] = []
        self._seq = itertools.count()

    def add(self, connection: str, messages: Sequence[Message]) -> None:
        decoded = [(m, envelope_mod.decode(m.payload)) for m in messages]
        with self._lock:
            for message, env in decoded:
                seq = next(self._seq)
                self._items.append(
                    Recorded(connection, message, env, seq, message.payload, turn=seq)
                )

    def all(self) -> list[Recorded]:
        with self._lock:
            return list(self._items)

    def take(self) -> Recorded | None:
        """The pending job whose turn is first, or None when nothing is left to run."""
        with self._lock:
            pending = [r for r in self._items if r.state is State.PENDING]
            return min(pending, key=lambda r: r.turn) if pending else None

    def requeue(self, item: Recorded, payload: bytes | None) -> None:
        """A released job: pending again, behind every job pending now."""
        with self._lock:
            item.state = State.PENDING
            item.turn = next(self._seq)
            if payload is not None:
                item.payload = payload

    def clear(self, connection: str, queue: str) -> int:
        with self._lock:
            doomed = [
                r for r in self._items
                if r.connection == connection and r.queue == queue and r.state is State.PENDING
            ]  # fmt: skip
            for item in doomed:
                item.state = State.DELETED
            return len(doomed)


class FakeConnection(InProcessControl):
    """A ``Driver`` that records; messages whose job is not faked go to the real connection."""

    def __init__(
        self,
        connection: str,
        recorder: Recorder,
        faked: Callable[[str], bool],
        real: Callable[[], Driver],
    ) -> None:
        self.connection = connection
        self.failed = MemoryFailedStore()
        self._recorder = recorder
        self._faked = faked
        self._real = real

    def push(self, message: Message) -> None:
        self.push_many([message])

    def push_many(self, messages: Sequence[Message]) -> None:
        kept: list[Message] = []
        passed: list[Message] = []
        for message in messages:
            faked = self._faked(envelope_mod.peek_name(message.payload))
            (kept if faked else passed).append(message)
        if passed:
            self._real().push_many(passed)
        self.record(kept)

    def record(self, messages: Sequence[Message]) -> None:
        """Keep ``messages`` whatever their job (a batch is always faked whole)."""
        self._recorder.add(self.connection, messages)

    def requeue(self, item: Recorded, payload: bytes | None) -> None:
        self._recorder.requeue(item, payload)

    def reserve(self, queues: Sequence[str], lease: float, wait: float = 0.0) -> Reservation | None:
        return None

    def size(self, queue: str) -> QueueSize:
        pending = [
            r for r in self._recorder.all()
            if r.connection == self.connection and r.queue == queue and r.state is State.PENDING
        ]  # fmt: skip
        delayed = sum(1 for r in pending if r.delay > 0)
        return QueueSize(pending=len(pending) - delayed, delayed=delayed)

    def queues(self) -> list[str]:
        found = (r.queue for r in self._recorder.all() if r.connection == self.connection)
        return sorted(set(found))

    def clear(self, queue: str) -> int:
        return self._recorder.clear(self.connection, queue)


class Claim:
    """A recorded job being run by ``drain()``: the ``Reservation`` a worker would hold."""

    def __init__(self, connection: FakeConnection, item: Recorded) -> None:
        self._connection = connection
        self._item = item
        self.token = f"drain-{item.seq}-{item.attempts}"

    @property
    def id(self) -> str:
        return self._item.id

    @property
    def queue(self) -> str:
        return self._item.queue

    @property
    def payload(self) -> bytes:
        return self._item.payload

    @property
    def attempts(self) -> int:
        return self._item.attempts

    def ack(self, successors: Sequence[Message] = ()) -> bool:
        self._item.state = State.COMPLETED
        self._connection.push_many(successors)
        return True

    def release(self, delay: float, payload: bytes | None = None) -> bool:
        self._connection.requeue(self._item, payload)
        return True

    def fail(self, record: FailedRecord) -> bool:
        self._item.state = State.FAILED
        self._connection.failed.record(record)
        return True

    def extend(self, seconds: float) -> bool:
        return True
