"""The driver contract: what every queue backend must do, written only against ``drivers.base``.

Each test runs once per backend module in ``backends/``. The tests share nothing but the server:
every test uses its own queue names, and lease expiry is exercised with short real leases
(a fraction of a second) rather than a fake clock, because the clock that matters is the
server's. A driver is shared by the threads of one process, so the race tests use threads.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from conveyor.drivers.base import Driver, FailedRecord, Message, QueueSize, Reservation, WorkerInfo

LEASE = 30.0
SHORT_LEASE = 0.5
#: how long past a short lease or delay to wait before expecting the job back
GRACE = 0.3


def new_queue() -> str:
    return f"contract-{uuid.uuid4().hex[:12]}"


def message(queue: str, n: int = 0, delay: float = 0.0) -> Message:
    return Message(uuid.uuid4().hex, queue, f'{{"n": {n}}}'.encode(), delay)


def take(driver: Driver, *queues: str, lease: float = LEASE) -> Reservation:
    found = driver.reserve(list(queues), lease)
    assert found is not None, f"expected a job on {queues}"
    return found


def failed_record(reservation: Reservation, connection: str, error: str = "boom") -> FailedRecord:
    return FailedRecord(
        uuid=reservation.id,
        connection=connection,
        queue=reservation.queue,
        payload=reservation.payload,
        exception=f"Traceback (most recent call last):\nValueError: {error}",
        failed_at=time.time(),
    )


def sizes(driver: Driver, queue: str) -> tuple[int, int, int]:
    size = driver.size(queue)
    return size.pending, size.delayed, size.reserved


# --- push and reserve ------------------------------------------------------------------------
def test_push_then_reserve_returns_the_payload_with_attempts_one(driver: Driver) -> None:
    queue = new_queue()
    sent = message(queue, 7)
    driver.push(sent)
    got = take(driver, queue)
    assert isinstance(got, Reservation)
    assert (got.id, got.queue, bytes(got.payload)) == (sent.id, queue, sent.payload)
    assert got.attempts == 1
    assert isinstance(got.token, str) and got.token


def test_reserve_on_an_empty_queue_returns_none(driver: Driver) -> None:
    assert driver.reserve([new_queue()], LEASE) is None
    assert driver.reserve([new_queue(), new_queue()], LEASE, wait=0.2) is None


def test_fifo_within_a_queue(driver: Driver) -> None:
    queue = new_queue()
    sent = [message(queue, i) for i in range(5)]
    for m in sent:
        driver.push(m)
    assert [take(driver, queue).id for _ in sent] == [m.id for m in sent]


def test_push_many_stores_all_in_order(driver: Driver) -> None:
    queue = new_queue()
    sent = [message(queue, i) for i in range(25)]
    driver.push_many(sent)
    driver.push_many([])
    assert sizes(driver, queue) == (25, 0, 0)
    assert [take(driver, queue).payload for _ in sent] == [m.payload for m in sent]


def test_pushing_an_id_already_stored_keeps_one_job(driver: Driver) -> None:
    """A retry of a failed job repeated after a crash pushes the same id again."""
    message = Message("same-id", "q", b'{"n": 1}')
    driver.push(message)
    driver.push(message)
    driver.push_many([message, Message("other-id", "q", b'{"n": 2}')])
    assert driver.size("q").pending == 2
    first = driver.reserve(["q"], lease=30)
    assert first is not None and first.id == "same-id"


def test_queues_lists_a_queue_that_has_jobs(driver: Driver) -> None:
    queue = new_queue()
    driver.push(message(queue))
    assert queue in driver.queues()


def test_delayed_job_is_invisible_until_due(driver: Driver) -> None:
    queue = new_queue()
    later = message(queue, 1, delay=0.4)
    driver.push(later)
    assert driver.reserve([queue], LEASE) is None
    assert sizes(driver, queue) == (0, 1, 0)
    now = message(queue, 2)
    driver.push(now)
    assert take(driver, queue).id == now.id, "a due job overtakes one still delayed"
    time.sleep(0.4 + GRACE)
    got = take(driver, queue)
    assert (got.id, got.attempts) == (later.id, 1)


def test_first_non_empty_queue_in_priority_order_wins(driver: Driver) -> None:
    high, low = new_queue(), new_queue()
    low1, high1, low2, high2 = message(low), message(high), message(low), message(high)
    for m in (low1, high1, low2, high2):
        driver.push(m)
    order = [take(driver, high, low).id for _ in range(4)]
    assert order == [high1.id, high2.id, low1.id, low2.id]


def test_an_empty_or_only_delayed_queue_falls_through_to_the_next(driver: Driver) -> None:
    empty, delayed, low = new_queue(), new_queue(), new_queue()
    driver.push(message(delayed, delay=30))
    ready = message(low)
    driver.push(ready)
    assert take(driver, empty, delayed, low).id == ready.id


# --- claims are exclusive ----------------------------------------------------------------------
def test_a_reserved_job_cannot_be_reserved_again(driver: Driver) -> None:
    queue = new_queue()
    driver.push(message(queue))
    take(driver, queue)
    assert driver.reserve([queue], LEASE) is None
    assert sizes(driver, queue) == (0, 0, 1)


def test_concurrent_claims_take_each_job_exactly_once(driver: Driver) -> None:
    queue, threads_n = new_queue(), 4
    sent = [message(queue, i) for i in range(60)]
    driver.push_many(sent)
    claimed: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def consume() -> None:
        try:
            start.wait()
            while (r := driver.reserve([queue], LEASE)) is not None:
                claimed.append(r.id)
                assert r.ack()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sorted(claimed) == sorted(m.id for m in sent)
    assert driver.size(queue).total == 0


def test_concurrent_pushes_from_threads_are_all_stored(driver: Driver) -> None:
    queue = new_queue()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(15):
                driver.push(message(queue, i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sizes(driver, queue) == (60, 0, 0)


# --- leases --------------------------------------------------------------------------------
def test_an_expired_lease_makes_the_job_claimable_again(driver: Driver) -> None:
    queue = new_queue()
    driver.push(message(queue))
    first = take(driver, queue, lease=SHORT_LEASE)
    assert driver.reserve([queue], LEASE) is None
    time.sleep(SHORT_LEASE + GRACE)
    second = take(driver, queue)
    assert (second.id, second.attempts) == (first.id, 2)
    assert second.token != first.token
    assert second.payload == first.payload


def test_extend_keeps_the_job_reserved_past_the_original_lease(driver: Driver) -> None:
    queue = new_queue()
    driver.push(message(queue))
    held = take(driver, queue, lease=SHORT_LEASE)
    assert held.extend(2.0) is True
    time.sleep(SHORT_LEASE + GRACE)
    assert driver.reserve([queue], LEASE) is None
    assert sizes(driver, queue) == (0, 0, 1)
    assert held.ack() is True


# --- settling a reservation ------------------------------------------------------------------
def test_ack_removes_the_job_once(driver: Driver) -> None:
    queue = new_queue()
    driver.push(message(queue))
    held = take(driver, queue)
    assert held.ack() is True
    assert driver.size(queue).total == 0
    assert held.ack() is False
    assert held.extend(LEASE) is False


def test_ack_with_successors_stores_them_with_the_removal(driver: Driver) -> None:
    queue, next_queue = new_queue(), new_queue()
    driver.push(message(queue))
    held = take(driver, queue)
    successors = [message(next_queue, 1), message(next_queue, 2), message(next_queue, 3, 30)]
    assert held.ack(successors) is True
    assert driver.size(queue).total == 0
    assert sizes(driver, next_queue) == (2, 1, 0)
    first = take(driver, next_queue)
    assert (first.id, first.payload, first.attempts) == (successors[0].id, successors[0].payload, 1)


def test_release_makes_the_job_available_again(driver: Driver) -> None:
    queue = new_queue()
    sent = message(queue)
    driver.push(sent)
    held = take(driver, queue)
    assert held.release(0) is True
    assert sizes(driver, queue) == (1, 0, 0)
    again = take(driver, queue)
    assert (again.id, again.payload, again.attempts) == (sent.id, sent.payload, 2)
    assert held.ack() is False, "a released reservation is settled"


def test_release_with_a_delay(driver: Driver) -> None:
    queue = new_queue()
    driver.push(message(queue))
    assert take(driver, queue).release(0.4) is True
    assert driver.reserve([queue], LEASE) is None
    assert sizes(driver, queue) == (0, 1, 0)
    time.sleep(0.4 + GRACE)
    assert take(driver, queue).attempts == 2


def test_release_with_a_new_payload(driver: Driver) -> None:
    queue = new_queue()
    driver.push(message(queue, 1))
    assert take(driver, queue).release(0, b'{"n": 99, "exceptions": 1}') is True
    assert take(driver, queue).payload == b'{"n": 99, "exceptions": 1}'


def test_fail_moves_the_job_to_the_failed_store(driver: Driver) -> None:
    queue = new_queue()
    driver.push(message(queue, 5))
    held = take(driver, queue)
    record = failed_record(held, driver.connection, "card declined")
    assert held.fail(record) is True
    assert driver.size(queue).total == 0
    assert driver.reserve([queue], LEASE) is None
    stored = driver.failed.get(held.id)
    assert stored is not None and stored.id is not None
    assert (stored.uuid, stored.queue, stored.connection) == (held.id, queue, driver.connection)
    assert stored.payload == held.payload
    assert stored.exception == record.exception
    assert stored.failed_at == pytest.approx(record.failed_at, abs=1.0)
    assert driver.failed.get(str(stored.id)) == stored
    assert driver.failed.count(queue) == 1
    assert held.fail(record) is False


# --- token fencing ------------------------------------------------------------------------------
def test_a_reservation_that_lost_its_lease_changes_nothing(driver: Driver) -> None:
    queue, next_queue = new_queue(), new_queue()
    driver.push(message(queue))
    stale = take(driver, queue, lease=SHORT_LEASE)
    time.sleep(SHORT_LEASE + GRACE)
    owner = take(driver, queue)
    assert owner.attempts == 2

    assert stale.ack([message(next_queue)]) is False
    assert stale.release(0) is False
    assert stale.release(0, b'{"n": "hijacked"}') is False
    assert stale.fail(failed_record(stale, driver.connection)) is False
    assert stale.extend(LEASE) is False

    assert sizes(driver, queue) == (0, 0, 1)
    assert driver.size(next_queue).total == 0
    assert driver.failed.get(stale.id) is None
    assert owner.extend(LEASE) is True
    assert owner.release(0) is True
    assert take(driver, queue).payload == stale.payload


def _swept_back(driver: Driver, queue: str) -> tuple[Reservation, Reservation]:
    """A job whose lease ran out while its worker was away, and that another worker's claim
    swept back (on Redis the claim is the sweeper) without taking it: the other job went first.
    Returns (the late reservation, the other worker's claim)."""
    late_job, other_job = message(queue, 1), message(queue, 2)
    driver.push(late_job)
    late = take(driver, queue, lease=SHORT_LEASE)
    driver.push(other_job)
    time.sleep(SHORT_LEASE + GRACE)
    other = take(driver, queue)
    assert other.id == other_job.id, "the job pending all along is claimed first"
    return late, other


@pytest.mark.parametrize("settle", ["ack", "release", "fail"])
def test_a_late_settlement_holds_a_job_swept_back_but_not_claimed_again(
    driver: Driver, settle: str
) -> None:
    """A worker that finished during an outage settles when the server is back: its token
    still holds the job if nobody claimed it since, so the job does not run a second time."""
    queue = new_queue()
    late, other = _swept_back(driver, queue)
    if settle == "ack":
        assert late.ack() is True
        assert sizes(driver, queue) == (0, 0, 1)
    elif settle == "release":
        assert late.release(30) is True
        assert sizes(driver, queue) == (0, 1, 1)
    else:
        assert late.fail(failed_record(late, driver.connection)) is True
        assert sizes(driver, queue) == (0, 0, 1)
        assert driver.failed.get(late.id) is not None
    assert driver.reserve([queue], LEASE) is None, "the late job is not claimable again"
    assert late.ack() is False, "settled once"
    assert other.ack() is True


def test_a_late_extend_takes_back_a_job_swept_back_but_not_claimed_again(driver: Driver) -> None:
    queue = new_queue()
    late, other = _swept_back(driver, queue)
    assert late.extend(LEASE) is True
    assert driver.reserve([queue], LEASE) is None
    assert sizes(driver, queue) == (0, 0, 2)
    assert late.ack() is True and other.ack() is True
    assert driver.size(queue).total == 0


def test_a_late_settlement_after_a_new_claim_is_refused(driver: Driver) -> None:
    queue = new_queue()
    late, other = _swept_back(driver, queue)
    owner = take(driver, queue)
    assert (owner.id, owner.attempts) == (late.id, 2)
    assert late.ack() is False
    assert late.release(0) is False
    assert late.fail(failed_record(late, driver.connection)) is False
    assert late.extend(LEASE) is False
    assert sizes(driver, queue) == (0, 0, 2)
    assert owner.ack() is True and other.ack() is True
    assert driver.failed.get(late.id) is None


# --- counting and clearing ----------------------------------------------------------------------
def test_size_counts_pending_delayed_and_reserved(driver: Driver) -> None:
    queue = new_queue()
    assert driver.size(queue) == QueueSize(0, 0, 0)
    driver.push_many([message(queue), message(queue), message(queue, delay=30)])
    take(driver, queue)
    size = driver.size(queue)
    assert (size.pending, size.delayed, size.reserved, size.total) == (1, 1, 1, 3)


def test_clear_deletes_every_job_of_one_queue_only(driver: Driver) -> None:
    queue, other = new_queue(), new_queue()
    driver.push_many([message(queue), message(queue), message(queue, delay=30), message(other)])
    held = take(driver, queue)
    assert driver.clear(queue) == 3
    assert driver.size(queue).total == 0
    assert driver.reserve([queue], LEASE) is None
    assert held.ack() is False
    assert sizes(driver, other) == (1, 0, 0)
    assert driver.clear(queue) == 0


# --- waiting -------------------------------------------------------------------------------
def test_reserve_with_wait_gets_a_job_pushed_meanwhile_from_another_thread(driver: Driver) -> None:
    queue = new_queue()
    sent = message(queue)

    def push_later() -> None:
        time.sleep(0.2)
        driver.push(sent)

    pusher = threading.Thread(target=push_later)
    pusher.start()
    try:
        got = driver.reserve([queue], LEASE, wait=5.0)
    finally:
        pusher.join(10)
    assert got is not None and got.id == sent.id


def test_reserve_with_wait_gets_a_delayed_job_when_it_falls_due(driver: Driver) -> None:
    queue = new_queue()
    sent = message(queue, delay=0.3)
    driver.push(sent)
    got = driver.reserve([queue], LEASE, wait=5.0)
    assert got is not None and got.id == sent.id


# --- failed store -----------------------------------------------------------------------------
def record_many(driver: Driver, queue: str, count: int, failed_at: float) -> list[FailedRecord]:
    records = [
        FailedRecord(uuid.uuid4().hex, driver.connection, queue, f'{{"n": {i}}}'.encode(),
                     f"RuntimeError: failure {i}", failed_at + i)
        for i in range(count)
    ]  # fmt: skip
    for r in records:
        driver.failed.record(r)
    return records


def test_failed_store_pages_newest_first(driver: Driver) -> None:
    queue = new_queue()
    records = record_many(driver, queue, 5, time.time())
    page = driver.failed.page(queue=queue)
    assert [r.uuid for r in page] == [r.uuid for r in reversed(records)]
    assert driver.failed.count(queue) == 5
    first = driver.failed.page(queue=queue, limit=2)
    assert [r.uuid for r in first] == [records[4].uuid, records[3].uuid]
    assert first[-1].id is not None
    rest = driver.failed.page(queue=queue, before=first[-1].id, limit=10)
    assert [r.uuid for r in rest] == [r.uuid for r in reversed(records[:3])]
    assert {r.uuid for r in driver.failed.page(limit=1000)} >= {r.uuid for r in records}


def test_failed_store_get_and_forget_by_uuid_or_id(driver: Driver) -> None:
    queue = new_queue()
    a, b = record_many(driver, queue, 2, time.time())
    stored_b = driver.failed.get(b.uuid)
    assert stored_b is not None and stored_b.payload == b.payload
    assert stored_b.exception == b.exception
    assert driver.failed.forget(a.uuid) is True
    assert driver.failed.forget(a.uuid) is False
    assert driver.failed.get(a.uuid) is None
    assert driver.failed.forget(str(stored_b.id)) is True
    assert driver.failed.count(queue) == 0
    assert driver.failed.get("no-such-failed-job") is None
    assert driver.failed.forget("no-such-failed-job") is False


@pytest.mark.parametrize(
    "key", ["\u00b2", "\u0663", "99999999999999999999999", "9223372036854775808", "9" * 5000, ""]
)
def test_failed_store_takes_any_odd_id_as_not_found(driver: Driver, key: str) -> None:
    """``²`` passes ``str.isdigit`` but not ``int``; past 2**63 - 1 the SQL stores overflow."""
    record_many(driver, new_queue(), 1, time.time())
    assert driver.failed.get(key) is None
    assert driver.failed.forget(key) is False
    assert driver.failed.count() == 1


def test_recording_the_same_uuid_again_replaces_the_record(driver: Driver) -> None:
    queue = new_queue()
    (first,) = record_many(driver, queue, 1, time.time())
    again = FailedRecord(first.uuid, first.connection, queue, first.payload, "second failure",
                         time.time())  # fmt: skip
    driver.failed.record(again)
    assert driver.failed.count(queue) == 1
    stored = driver.failed.get(first.uuid)
    assert stored is not None and stored.exception == "second failure"


def test_failed_store_flush_older_than(driver: Driver) -> None:
    queue = new_queue()
    ancient = record_many(driver, queue, 2, 1000.0)
    (recent,) = record_many(driver, queue, 1, time.time())
    assert driver.failed.flush(older_than=5000.0) >= 2
    assert [driver.failed.get(r.uuid) for r in ancient] == [None, None]
    assert driver.failed.get(recent.uuid) is not None
    assert driver.failed.count(queue) == 1


# --- control plane ------------------------------------------------------------------------------
def test_restart_request_is_timestamped(driver: Driver) -> None:
    first = driver.request_restart()
    assert first == pytest.approx(time.time(), abs=60)
    assert driver.restart_requested_at() == pytest.approx(first, abs=0.01)
    time.sleep(0.02)
    second = driver.request_restart()
    assert second > first
    assert driver.restart_requested_at() == pytest.approx(second, abs=0.01)


def worker_info(queues: tuple[str, ...], **changes: object) -> WorkerInfo:
    now = time.time()
    base: dict[str, object] = {
        "id": f"host:{uuid.uuid4().hex[:8]}", "hostname": "host", "pid": 4242, "queues": queues,
        "started_at": now - 5, "last_seen": now, "processed": 3, "current_job": "job-1",
    }  # fmt: skip
    base.update(changes)
    return WorkerInfo(**base)  # type: ignore[arg-type]


def test_heartbeats_list_live_workers_until_forgotten(driver: Driver) -> None:
    info = worker_info((new_queue(), new_queue()))
    driver.heartbeat(info)
    seen = {w.id: w for w in driver.workers(60)}
    assert info.id in seen
    got = seen[info.id]
    assert (got.hostname, got.pid, got.queues) == ("host", 4242, info.queues)
    assert (got.processed, got.current_job) == (3, "job-1")
    assert got.last_seen == pytest.approx(info.last_seen, abs=0.01)

    later = worker_info(info.queues, id=info.id, processed=4, current_job=None)
    driver.heartbeat(later)
    updated = {w.id: w for w in driver.workers(60)}[info.id]
    assert (updated.processed, updated.current_job) == (4, None)
    assert sum(w.id == info.id for w in driver.workers(60)) == 1

    driver.forget_worker(info.id)
    assert info.id not in {w.id for w in driver.workers(60)}


def test_workers_not_seen_recently_are_not_listed(driver: Driver) -> None:
    stale = worker_info(("default",), last_seen=time.time() - 600)
    driver.heartbeat(stale)
    try:
        assert stale.id not in {w.id for w in driver.workers(60)}
        assert stale.id in {w.id for w in driver.workers(3600)}
    finally:
        driver.forget_worker(stale.id)
