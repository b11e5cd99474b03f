"""Fixtures shared by the executor's unit tests (sync ``execute`` and ``execute_async``)."""

from __future__ import annotations

import pytest

from conveyor.events import Event, EventBus
from conveyor.registry import Registry
from conveyor.worker.executor import Executor, WorkerDefaults


@pytest.fixture
def events() -> list[Event]:
    """Every event the ``executor`` fixture emits, in order."""
    return []


@pytest.fixture
def executor(events: list[Event]) -> Executor:
    bus = EventBus()
    bus.listen(Event, events.append)
    return Executor(Registry(), bus, WorkerDefaults(tries=1, backoff=None, timeout=None))
