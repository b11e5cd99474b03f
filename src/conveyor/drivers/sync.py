"""``sync://``: run each job the moment it is dispatched, in the dispatching process.

For development and tests, as Laravel's sync connection: one attempt, no delay, no worker. A
job that fails calls its ``failed()`` hook, lands in an in-memory failed store, and its
exception propagates to the code that dispatched it, so mistakes are loud.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..worker.executor import Attempt
from ..worker.outcome import Kind
from .base import FailedRecord, Message, QueueSize, Reservation
from .in_process import InProcessControl
from .memory_failed import MemoryFailedStore

if TYPE_CHECKING:
    from ..app import Conveyor


class SyncDriver(InProcessControl):
    def __init__(self, app: Conveyor, connection: str = "sync") -> None:
        self.app = app
        self.connection = connection
        self.failed = MemoryFailedStore()

    def push(self, message: Message) -> None:
        executor = self.app.executor()
        attempt = Attempt(message.id, message.queue, self.connection, message.payload, 1)
        outcome = executor.execute(attempt, single_attempt=True)
        if outcome.kind is Kind.FAILED:
            self.failed.record(
                FailedRecord(message.id, self.connection, message.queue, message.payload,
                             outcome.error or outcome.reason, time.time())
            )  # fmt: skip
            if executor.last_exception is not None:
                raise executor.last_exception

    def push_many(self, messages: Sequence[Message]) -> None:
        for message in messages:
            self.push(message)

    def reserve(self, queues: Sequence[str], lease: float, wait: float = 0.0) -> Reservation | None:
        return None

    def size(self, queue: str) -> QueueSize:
        return QueueSize()

    def queues(self) -> list[str]:
        return []

    def clear(self, queue: str) -> int:
        return 0
