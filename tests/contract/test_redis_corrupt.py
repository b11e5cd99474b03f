"""Redis data that is not what the scripts expect, written straight into Redis: no job vanishes.

Redis does not undo a script's writes when a later command of it fails, so before the scripts
checked first, a job could leave one key and never reach the next. Each test corrupts a value
or a key, runs the driver, and checks the job is still pending, reserved, done or failed, and
that nothing but ``StorageUnavailable`` (a documented ``ConveyorError``) comes out.
"""

from __future__ import annotations

import time
import uuid

import pytest

from conveyor.drivers.base import Driver, FailedRecord, Message, QueueSize, WorkerInfo
from conveyor.drivers.redis import RedisDriver
from conveyor.errors import StorageUnavailable


@pytest.fixture
def driver(redis_driver: Driver) -> RedisDriver:
    """Every test here runs on one Redis server and on a cluster (``redis_driver``)."""
    assert isinstance(redis_driver, RedisDriver)
    return redis_driver


def message(queue: str, delay: float = 0.0) -> Message:
    return Message(uuid.uuid4().hex, queue, b'{"n": 1}', delay)


def record(job_id: str, driver: RedisDriver, queue: str) -> FailedRecord:
    return FailedRecord(job_id, driver.connection, queue, b'{"n": 1}', "boom", time.time())


def corrupt_attempts(driver: RedisDriver, queue: str, job_id: str, value: str) -> None:
    driver.conn.client.hset(driver.keys(queue).attempts, job_id, value)


def assert_failed_as_corrupt(driver: RedisDriver, job_id: str) -> None:
    stored = driver.failed.get(job_id)
    assert stored is not None, "the corrupt job is in the failed store"
    assert "attempt count is not a whole number" in stored.exception


# --- a stored attempt count that is not a number ------------------------------------------------
@pytest.mark.parametrize("value", ["abc", "1.5", "-1", "007"])
def test_a_claim_moves_a_job_with_a_corrupt_attempt_count_to_the_failed_store(
    driver: RedisDriver, value: str
) -> None:
    bad, good = message("q"), message("q")
    driver.push_many([bad, good])
    corrupt_attempts(driver, "q", bad.id, value)
    got = driver.reserve(["q"], 30)
    assert got is not None and (got.id, got.attempts) == (good.id, 1)
    assert_failed_as_corrupt(driver, bad.id)
    assert driver.size("q") == QueueSize(0, 0, 1)


def test_a_claim_gets_past_thousands_of_corrupt_jobs_without_recursing(
    driver: RedisDriver,
) -> None:
    """One failed move after another, in a loop: 1,500 of them recursed past Python's limit."""
    bad = [message("q") for _ in range(1500)]
    good = message("q")
    driver.push_many([*bad, good])
    client = driver.conn.client
    client.hset(driver.keys("q").attempts, mapping={m.id: "x" for m in bad})
    got = driver.reserve(["q"], 30)
    assert got is not None and got.id == good.id
    assert driver.failed.count() == len(bad)
    assert driver.size("q") == QueueSize(0, 0, 1)


def test_a_prefetch_moves_a_job_with_a_corrupt_attempt_count_to_the_failed_store(
    driver: RedisDriver,
) -> None:
    bad, good = message("q"), message("q")
    driver.push_many([bad, good])
    corrupt_attempts(driver, "q", bad.id, "x")
    _, claimed = driver.ack_many_and_claim([], None, ["q"], 30, 3)
    assert [c.id for c in claimed] == [good.id]
    assert_failed_as_corrupt(driver, bad.id)
    assert driver.size("q") == QueueSize(0, 0, 1)


def test_an_ack_and_claim_moves_a_job_with_a_corrupt_attempt_count_to_the_failed_store(
    driver: RedisDriver,
) -> None:
    driver.push(message("q"))
    held = driver.reserve(["q"], 30)
    assert held is not None
    bad = message("q")
    driver.push(bad)
    corrupt_attempts(driver, "q", bad.id, "x")
    acked, claimed = held.ack_and_reserve(["q"], 30)
    assert acked and claimed is None
    assert_failed_as_corrupt(driver, bad.id)
    assert driver.size("q").total == 0


# --- a key of the wrong type: refused before anything changed -------------------------------------
def test_a_claim_refuses_a_pending_key_of_the_wrong_type_without_losing_due_jobs(
    driver: RedisDriver,
) -> None:
    """The sweep moves due delayed jobs to the pending list: with that list a string, they once
    left the delayed set and never arrived."""
    later = message("q", delay=0.2)
    driver.push(later)
    time.sleep(0.4)
    client, k = driver.conn.client, driver.keys("q")
    client.set(k.pending, "not a list")
    with pytest.raises(StorageUnavailable, match="CORRUPT"):
        driver.reserve(["q"], 30)
    assert client.zcard(k.delayed) == 1, "the due job is still in the delayed set"
    client.delete(k.pending)
    got = driver.reserve(["q"], 30)
    assert got is not None and got.id == later.id


def test_a_release_refuses_a_delayed_key_of_the_wrong_type_and_keeps_the_job(
    driver: RedisDriver,
) -> None:
    driver.push(message("q"))
    held = driver.reserve(["q"], 30)
    assert held is not None
    client, k = driver.conn.client, driver.keys("q")
    client.set(k.delayed, "not a zset")
    with pytest.raises(StorageUnavailable, match="CORRUPT"):
        held.release(5)
    assert client.zscore(k.reserved, held.id) is not None, "still reserved, token intact"
    client.delete(k.delayed)
    assert held.release(5) is True
    assert driver.size("q") == QueueSize(0, 1, 0)


def test_a_push_refuses_a_pending_key_of_the_wrong_type_and_a_retry_stores_the_job(
    driver: RedisDriver,
) -> None:
    """A payload stored without its place in the list made the retried push skip the job."""
    client, k = driver.conn.client, driver.keys("q")
    client.set(k.pending, "not a list")
    sent = message("q")
    with pytest.raises(StorageUnavailable):
        driver.push(sent)
    assert client.hlen(k.payload) == 0, "nothing stored"
    client.delete(k.pending)
    driver.push(sent)
    got = driver.reserve(["q"], 30)
    assert got is not None and got.id == sent.id


def test_an_ack_refuses_an_attempts_key_of_the_wrong_type_and_keeps_the_job(
    driver: RedisDriver,
) -> None:
    driver.push(message("q"))
    held = driver.reserve(["q"], 30)
    assert held is not None
    client, k = driver.conn.client, driver.keys("q")
    client.delete(k.attempts)
    client.set(k.attempts, "not a hash")
    with pytest.raises(StorageUnavailable, match="CORRUPT"):
        held.ack()
    assert driver.size("q") == QueueSize(0, 0, 1)
    client.delete(k.attempts)
    assert held.ack() is True
    assert driver.size("q").total == 0


# --- the failed store ----------------------------------------------------------------------------
def test_a_fail_rebuilds_a_corrupt_failed_record_counter_instead_of_losing_the_job(
    driver: RedisDriver,
) -> None:
    driver.push_many([message("q"), message("q")])
    first = driver.reserve(["q"], 30)
    second = driver.reserve(["q"], 30)
    assert first is not None and second is not None
    assert first.fail(record(first.id, driver, "q")) is True
    driver.conn.client.set(driver.failed.keys.seq, "garbage")
    assert second.fail(record(second.id, driver, "q")) is True
    before, after = driver.failed.get(first.id), driver.failed.get(second.id)
    assert before is not None and after is not None
    assert after.id is not None and before.id is not None and after.id > before.id
    assert driver.size("q").total == 0


@pytest.mark.parametrize(("top", "kept"), [("1.5", True), ("inf", False), ("1e20", False)])
def test_a_corrupt_counter_beside_a_corrupt_highest_id_never_loses_the_job(
    driver: RedisDriver, top: str, kept: bool
) -> None:
    """The counter is rebuilt from the highest id when that is a number; when it is not
    either, the failure is refused before anything is written and the job stays reserved."""
    driver.push(message("q"))
    held = driver.reserve(["q"], 30)
    assert held is not None
    client, keys = driver.conn.client, driver.failed.keys
    client.set(keys.seq, "garbage")
    client.zadd(keys.ids, {"999": float(top)})
    if driver.conn.cluster and not kept:
        assert held.fail(record(held.id, driver, "q")) is True
        assert client.hlen(driver.keys("q").handoff) == 1, "parked, not lost"
        return
    if kept:
        assert held.fail(record(held.id, driver, "q")) is True
        stored = driver.failed.get(held.id)
        assert stored is not None and stored.id == 2
        assert driver.size("q").total == 0
    else:
        with pytest.raises(StorageUnavailable, match="CORRUPT"):
            held.fail(record(held.id, driver, "q"))
        assert driver.size("q") == QueueSize(0, 0, 1), "still reserved, not lost"


def test_a_fail_refuses_a_failed_store_of_the_wrong_type_and_keeps_the_job(
    driver: RedisDriver,
) -> None:
    """One server: refused, the job stays reserved. A cluster parks the record in the queue's
    slot first, and it reaches the store once the store takes it."""
    driver.push(message("q"))
    held = driver.reserve(["q"], 30)
    assert held is not None
    client, records = driver.conn.client, driver.failed.keys.records
    client.set(records, "not a hash")
    if driver.conn.cluster:
        assert held.fail(record(held.id, driver, "q")) is True
        assert client.hlen(driver.keys("q").handoff) == 1, "parked, not lost"
        client.delete(records)
        driver.flush_handoff("q")
    else:
        with pytest.raises(StorageUnavailable, match="CORRUPT"):
            held.fail(record(held.id, driver, "q"))
        assert driver.size("q") == QueueSize(0, 0, 1)
        client.delete(records)
        assert held.fail(record(held.id, driver, "q")) is True
    assert driver.failed.get(held.id) is not None
    assert driver.size("q").total == 0


# --- the control plane ---------------------------------------------------------------------------
def test_control_plane_values_of_the_wrong_kind_raise_storage_unavailable(
    driver: RedisDriver,
) -> None:
    client = driver.conn.client
    client.set(driver.control.restart, "soon")
    with pytest.raises(StorageUnavailable):
        driver.restart_requested_at()
    client.set(driver.control.workers, "not a hash")
    info = WorkerInfo("w", "host", 1, ("q",), time.time(), time.time())
    with pytest.raises(StorageUnavailable, match="CORRUPT"):
        driver.heartbeat(info)
