"""Typed lifecycle events and the bus that delivers them.

Events only observe: a listener that raises is logged and ignored, it can never change a job's
outcome. Listeners are registered by application code (the chapter's Queue::before / after /
failing) and run in the process where the event happens.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger("conveyor.events")


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class JobEvent(Event):
    connection: str
    queue: str
    job_id: str
    job_name: str
    attempts: int


@dataclass(frozen=True)
class JobQueued(JobEvent):
    delay: float = 0.0


@dataclass(frozen=True)
class JobProcessing(JobEvent):
    pass


@dataclass(frozen=True)
class JobProcessed(JobEvent):
    duration: float = 0.0


@dataclass(frozen=True)
class JobReleased(JobEvent):
    delay: float = 0.0


@dataclass(frozen=True)
class JobExceptionOccurred(JobEvent):
    exception: BaseException | None = None


@dataclass(frozen=True)
class JobFailed(JobEvent):
    exception: BaseException | None = None


@dataclass(frozen=True)
class JobTimedOut(JobEvent):
    timeout: float = 0.0


@dataclass(frozen=True)
class WorkerLooping(Event):
    connection: str
    queues: tuple[str, ...]


@dataclass(frozen=True)
class WorkerStopping(Event):
    connection: str
    status: int
    reason: str


E = TypeVar("E", bound=Event)
Listener = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[type[Event], list[Listener]] = defaultdict(list)

    def listen(self, event_type: type[E], listener: Callable[[E], None]) -> Callable[[E], None]:
        self._listeners[event_type].append(listener)
        return listener

    def on(self, event_type: type[E]) -> Callable[[Callable[[E], None]], Callable[[E], None]]:
        """Decorator form: ``@app.events.on(JobFailed)``."""

        def register(fn: Callable[[E], None]) -> Callable[[E], None]:
            return self.listen(event_type, fn)

        return register

    def has_listeners(self) -> bool:
        return any(self._listeners.values())

    def emit(self, event: Event) -> None:
        for event_type in type(event).__mro__:
            for listener in self._listeners.get(event_type, ()):
                try:
                    listener(event)
                except Exception:
                    log.exception("event listener %r failed on %s", listener, type(event).__name__)
