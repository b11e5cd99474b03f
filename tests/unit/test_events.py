"""Events only observe: listeners by type and base type; one that raises does not stop others."""

from __future__ import annotations

import logging

import pytest

from conveyor.events import (
    Event,
    EventBus,
    JobEvent,
    JobFailed,
    JobProcessed,
    JobProcessing,
    WorkerStopping,
)

META = ("database", "default", "id1", "m:J", 1)


def test_listeners_receive_only_their_event_type() -> None:
    bus = EventBus()
    processed: list[Event] = []
    failed: list[Event] = []
    bus.listen(JobProcessed, processed.append)
    bus.listen(JobFailed, failed.append)
    event = JobProcessed(*META, duration=0.5)
    bus.emit(event)
    assert processed == [event] and failed == []


def test_a_base_type_listener_hears_every_subtype() -> None:
    bus = EventBus()
    jobs: list[Event] = []
    everything: list[Event] = []
    bus.listen(JobEvent, jobs.append)
    bus.listen(Event, everything.append)
    events = [JobProcessing(*META), JobFailed(*META), WorkerStopping("database", 0, "done")]
    for e in events:
        bus.emit(e)
    assert jobs == events[:2]
    assert everything == events


def test_decorator_registration_and_has_listeners() -> None:
    bus = EventBus()
    assert not bus.has_listeners()
    seen: list[str] = []

    @bus.on(JobProcessing)
    def record(event: JobProcessing) -> None:
        seen.append(event.job_id)

    assert bus.has_listeners()
    bus.emit(JobProcessing(*META))
    assert seen == ["id1"]


def test_a_raising_listener_is_logged_and_does_not_break_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    after: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("listener bug")

    bus.listen(JobProcessed, broken)
    bus.listen(JobProcessed, after.append)
    bus.listen(Event, after.append)
    with caplog.at_level(logging.ERROR, logger="conveyor.events"):
        bus.emit(JobProcessed(*META))
    assert len(after) == 2
    assert "listener bug" in caplog.text


def test_events_are_frozen() -> None:
    event = JobProcessing(*META)
    with pytest.raises(AttributeError):
        event.job_id = "other"  # type: ignore[misc]
