"""Retrying a failed job puts it back to start over, as Laravel's ``queue:retry`` does."""

from __future__ import annotations

import time
from datetime import timedelta

import msgspec

from conveyor import Conveyor, Job
from conveyor import failed as failed_ops
from conveyor.dispatch import build_envelope
from conveyor.drivers.base import Driver, FailedRecord
from conveyor.envelope import decode, encode
from conveyor.worker.executor import Attempt
from conveyor.worker.outcome import Kind


class Deadline(Job):
    retry_until = timedelta(minutes=10)

    def handle(self) -> None:
        raise RuntimeError("still down")


class Fragile(Job):
    tries = 0
    max_exceptions = 2

    def handle(self) -> None:
        raise RuntimeError("flaky")


def fail_for_good(driver: Driver, job: Job, **changes: object) -> FailedRecord:
    """Store ``job`` as a failed record whose envelope carries ``changes`` (its history)."""
    env, _ = build_envelope(
        job, queue=None, connection="database", default_queue="default", max_payload=1 << 20
    )
    payload = encode(msgspec.structs.replace(env, **changes))
    driver.failed.record(FailedRecord(env.id, "database", env.queue, payload, "Error", time.time()))
    stored = driver.failed.get(env.id)
    assert stored is not None
    return stored


def run_retried(app: Conveyor, record: FailedRecord) -> Kind:
    failed_ops.retry(app.driver(), record)
    got = app.driver().reserve([record.queue], lease=30)
    assert got is not None and got.id == record.uuid and got.attempts == 1
    attempt = Attempt(got.id, got.queue, "database", got.payload, got.attempts)
    return app.executor().execute(attempt).kind


def test_retry_queues_the_same_job_and_drops_the_record(app: Conveyor) -> None:
    driver = app.driver()
    record = fail_for_good(driver, Fragile())
    assert failed_ops.retry(driver, record) == record.uuid
    assert driver.failed.get(record.uuid) is None
    got = driver.reserve(["default"], lease=30)
    assert got is not None
    assert (got.id, decode(got.payload).job) == (record.uuid, Fragile.job_name)


def test_retry_all_only_for_one_queue(app: Conveyor) -> None:
    driver = app.driver()
    for queue in ("a", "a", "b"):
        payload = b'{"id":"x","job":"m:J","args":{}}'
        driver.failed.record(FailedRecord(queue + str(time.time_ns()), "database", queue, payload,
                                          "E", time.time()))  # fmt: skip
    assert failed_ops.retry_all(driver, "a") == 2
    assert driver.size("a").pending == 2
    assert driver.failed.count("b") == 1


def test_a_retried_job_gets_a_fresh_retry_until_window(app: Conveyor) -> None:
    hour_ago = time.time() - 3600
    record = fail_for_good(app.driver(), Deadline(), dispatched_at=hour_ago,
                           retry_until=hour_ago + 600)  # fmt: skip
    assert run_retried(app, record) is Kind.RELEASED, "it runs and may retry, not fail unrun"


def test_a_retried_job_starts_its_exception_count_again(app: Conveyor) -> None:
    record = fail_for_good(app.driver(), Fragile(), exceptions=2)
    assert run_retried(app, record) is Kind.RELEASED


def test_a_malformed_failed_payload_is_retried_as_it_is(app: Conveyor) -> None:
    driver = app.driver()
    driver.failed.record(FailedRecord("bad1", "database", "default", b"{not json", "E", 1.0))
    record = driver.failed.get("bad1")
    assert record is not None
    failed_ops.retry(driver, record)
    got = driver.reserve(["default"], lease=30)
    assert got is not None and got.payload == b"{not json"
