"""Dispatch validates and encodes at the call site, stores once, and returns the job id."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor import (
    ConfigError,
    Conveyor,
    ConveyorError,
    Job,
    JobQueued,
    PayloadTooLarge,
    SerializationError,
    dispatch,
    dispatch_if,
    dispatch_many,
    dispatch_sync,
    dispatch_unless,
    load_settings,
    set_app,
)
from conveyor.drivers.base import Driver, Reservation
from conveyor.envelope import decode
from conveyor.worker.outcome import Kind

RAN: list[Any] = []


class Note(Job):
    text: str = ""

    def handle(self) -> None:
        RAN.append(self.text)


class Urgent(Job):
    n: int = 0
    queue = "high"
    tries = 4
    timeout = 7.0
    backoff = [1, 2]
    retry_until = timedelta(minutes=5)

    def handle(self) -> None:
        RAN.append(self.n)


class Exploding(Job):
    def handle(self) -> None:
        raise ValueError("kaboom")

    def failed(self, exc: BaseException) -> None:
        RAN.append(("failed", str(exc)))


class Holder(Job):
    thing: Any = None

    def handle(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _reset() -> None:
    RAN.clear()


@pytest.fixture
def small_app(project: Path) -> Iterator[Conveyor]:
    """An app whose config caps payloads at 300 bytes and declares a second SQLite connection."""
    (project / "conveyor.toml").write_text(
        'max_payload = 300\n[connections.other]\nurl = "sqlite:///other.db"\n'
    )
    conveyor = Conveyor(load_settings(project, env={}))
    previous = set_app(conveyor)
    yield conveyor
    set_app(previous)
    conveyor.close()


def take(driver: Driver, queue: str = "default") -> Reservation:
    found = driver.reserve([queue], lease=5)
    assert found is not None, f"no job on {queue!r}"
    return found


def test_dispatch_returns_the_id_and_stores_the_lifted_policy(app: Conveyor) -> None:
    before = time.time()
    job_id = Urgent(n=3).dispatch()
    got = take(app.driver(), "high")
    env = decode(got.payload)
    assert got.id == job_id == env.id
    assert (env.job, env.args, env.queue) == (Urgent.job_name, {"n": 3}, "high")
    assert (env.tries, env.timeout, env.backoff) == (4, 7.0, [1.0, 2.0])
    assert env.retry_until is not None and before + 299 < env.retry_until < time.time() + 301
    assert env.connection == "database"


def test_dispatch_function_and_method_agree(app: Conveyor) -> None:
    ids = {dispatch(Note(text="a")), Note(text="b").pending().dispatch()}
    assert len(ids) == 2
    assert app.driver().size("default").pending == 2


@pytest.mark.parametrize(
    "when", [0.3, timedelta(seconds=0.3), "datetime"], ids=["seconds", "timedelta", "datetime"]
)
def test_delay_hides_the_job_until_it_is_due(app: Conveyor, when: Any) -> None:
    if when == "datetime":
        when = datetime.now() + timedelta(seconds=0.3)
    Note(text="later").delay(when).dispatch()
    driver = app.driver()
    size = driver.size("default")
    assert (size.pending, size.delayed) == (0, 1)
    assert driver.reserve(["default"], lease=5) is None
    time.sleep(0.4)
    assert take(driver).attempts == 1


def test_delay_in_the_past_is_no_delay(app: Conveyor) -> None:
    Note().delay(datetime.now() - timedelta(hours=1)).dispatch()
    Note().delay(-5).dispatch()
    assert app.driver().size("default").pending == 2


@pytest.mark.parametrize("when", ["10", True, [1]])
def test_delay_of_the_wrong_type_is_refused(when: Any) -> None:
    with pytest.raises(ConveyorError, match="delay must be"):
        Note().delay(when)


def test_on_queue_overrides_the_class_queue(app: Conveyor) -> None:
    Urgent().on_queue("low").dispatch()
    driver = app.driver()
    assert driver.size("low").pending == 1
    assert driver.size("high").pending == 0


def test_on_connection_stores_on_that_connection(small_app: Conveyor) -> None:
    Note(text="x").on_connection("other").dispatch()
    assert small_app.driver("other").size("default").pending == 1
    assert small_app.driver().size("default").pending == 0
    assert (Path(small_app.settings.root) / "other.db").exists()


def test_on_the_sync_connection_the_job_runs_at_dispatch(app: Conveyor) -> None:
    Note(text="now").on_connection("sync").dispatch()
    assert RAN == ["now"]


def test_unknown_connection_is_a_config_error(app: Conveyor) -> None:
    with pytest.raises(ConfigError, match="unknown connection 'nope'"):
        Note().on_connection("nope").dispatch()


def test_dispatch_if_and_unless(app: Conveyor) -> None:
    assert dispatch_if(False, Note()) is None
    assert dispatch_unless(True, Note()) is None
    assert app.driver().size("default").pending == 0
    assert dispatch_if(1, Note()) is not None
    assert dispatch_unless([], Note().on_queue("q2")) is not None
    assert app.driver().size("default").pending == 1
    assert app.driver().size("q2").pending == 1


def created_at_values(app: Conveyor) -> list[float]:
    path = Path(app.settings.root) / "conveyor.db"
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT created_at FROM conveyor_jobs ORDER BY seq")]


def test_dispatch_many_stores_all_in_one_write_in_order(app: Conveyor) -> None:
    ids = dispatch_many([Note(text=str(i)) for i in range(50)] + [Urgent().on_queue("default")])
    assert len(set(ids)) == 51
    assert len(set(created_at_values(app))) == 1, "one transaction stamps one time"
    got = [take(app.driver()).id for _ in range(51)]
    assert got == ids


def test_dispatch_many_is_all_or_nothing(app: Conveyor) -> None:
    with pytest.raises(SerializationError):
        dispatch_many([Note(text="ok"), Holder(thing=object())])
    assert app.driver().size("default").total == 0


def test_oversized_payload_is_refused_and_nothing_is_queued(small_app: Conveyor) -> None:
    with pytest.raises(PayloadTooLarge) as info:
        Note(text="x" * 400).dispatch()
    assert "300-byte limit" in str(info.value) and "max_payload" in str(info.value)
    assert isinstance(info.value, SerializationError)
    with pytest.raises(PayloadTooLarge):
        dispatch_many([Note(text="fits"), Note(text="y" * 400)])
    assert small_app.driver().size("default").total == 0
    Note(text="fits").dispatch()
    assert small_app.driver().size("default").pending == 1


def test_dispatch_emits_job_queued(app: Conveyor) -> None:
    seen: list[JobQueued] = []
    app.events.listen(JobQueued, seen.append)
    job_id = Note().delay(30).dispatch()
    assert [(e.job_id, e.job_name, e.queue, e.delay) for e in seen] == [
        (job_id, Note.job_name, "default", 30.0)
    ]


def test_dispatch_sync_runs_now_through_the_executor_without_storing(app: Conveyor) -> None:
    outcome = dispatch_sync(Note(text="inline"))
    assert outcome.kind is Kind.COMPLETED
    assert RAN == ["inline"]
    assert app.driver().size("default").total == 0


def test_dispatch_sync_reraises_after_calling_failed(app: Conveyor) -> None:
    with pytest.raises(ValueError, match="kaboom"):
        dispatch_sync(Exploding())
    assert RAN == [("failed", "kaboom")]


def test_dispatch_sync_validates_arguments_too(app: Conveyor) -> None:
    with pytest.raises(SerializationError):
        dispatch_sync(Holder(thing=lambda: 0))
