"""``sync://`` runs each job at push, so it has its own contract instead of the storage suite."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from conveyor import Conveyor, Job, UnknownJobError
from conveyor.dispatch import build_envelope
from conveyor.drivers.base import Driver, Message, QueueSize, WorkerInfo
from conveyor.envelope import Envelope, encode

RUNS: list[Any] = []


class Greet(Job):
    name: str

    def handle(self) -> None:
        RUNS.append(("greet", self.name, self.attempts()))


class Crash(Job):
    tries = 5

    def handle(self) -> None:
        RUNS.append("crash")
        raise ConnectionError("smtp down")

    def failed(self, exc: BaseException) -> None:
        RUNS.append(("failed", str(exc)))


@pytest.fixture(autouse=True)
def _reset() -> None:
    RUNS.clear()


@pytest.fixture
def sync(app: Conveyor) -> Driver:
    return app.driver("sync")


def message_for(job: Job, queue: str = "default") -> Message:
    env, payload = build_envelope(
        job, queue=queue, connection="sync", default_queue="default", max_payload=1 << 20
    )
    return Message(env.id, env.queue, payload)


def test_push_runs_the_job_once_and_stores_nothing(sync: Driver) -> None:
    sync.push(message_for(Greet(name="ada")))
    assert RUNS == [("greet", "ada", 1)]
    assert sync.size("default") == QueueSize(0, 0, 0)
    assert sync.reserve(["default"], 30) is None
    assert sync.failed.count() == 0


def test_push_many_runs_each_in_order(sync: Driver) -> None:
    sync.push_many([message_for(Greet(name=n)) for n in ("a", "b", "c")])
    assert [r[1] for r in RUNS] == ["a", "b", "c"]


def test_a_failure_calls_failed_records_it_and_reraises(sync: Driver) -> None:
    sent = message_for(Crash(), queue="mail")
    with pytest.raises(ConnectionError, match="smtp down"):
        sync.push(sent)
    assert RUNS == ["crash", ("failed", "smtp down")], "one attempt only, whatever tries says"
    record = sync.failed.get(sent.id)
    assert record is not None
    assert (record.uuid, record.queue, record.connection) == (sent.id, "mail", "sync")
    assert record.payload == sent.payload
    assert "ConnectionError: smtp down" in record.exception and "Traceback" in record.exception
    assert sync.failed.count("mail") == 1
    assert sync.failed.forget(sent.id) is True
    assert sync.failed.count() == 0


def test_an_unknown_job_is_recorded_and_raised(sync: Driver) -> None:
    payload = encode(Envelope(id=uuid.uuid4().hex, job="gone:Nobody", args={}))
    with pytest.raises(UnknownJobError):
        sync.push(Message("x1", "default", payload))
    record = sync.failed.get("x1")
    assert record is not None and "unknown job" in record.exception


def test_dispatch_on_the_sync_connection_runs_at_once_even_when_delayed(app: Conveyor) -> None:
    job_id = Greet(name="now").on_connection("sync").delay(3600).dispatch()
    assert isinstance(job_id, str) and job_id
    assert RUNS == [("greet", "now", 1)]


def test_nothing_is_ever_queued(sync: Driver) -> None:
    assert sync.queues() == []
    assert sync.clear("default") == 0
    assert sync.reserve(["default"], 30, wait=0.1) is None


def test_control_plane(sync: Driver) -> None:
    assert sync.restart_requested_at() is None
    stamp = sync.request_restart()
    assert stamp == pytest.approx(time.time(), abs=5)
    assert sync.restart_requested_at() == stamp
    sync.heartbeat(WorkerInfo("w", "h", 1, ("default",), time.time(), time.time()))
    assert sync.workers(60) == []
    sync.forget_worker("w")
    sync.migrate()
