"""The prefetch contract (``drivers.base.Prefetch``): a claim held while another job runs costs
no attempt until it starts, and a busy worker settles several jobs, starts one and claims
several in one call.

Runs on every backend of the contract suite; a backend without prefetch is reported as skipped
by name, so a missing implementation shows in the test summary.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from conveyor.drivers.base import Driver, Prefetch, Reservation
from tests.contract.test_driver_contract import (
    GRACE,
    LEASE,
    SHORT_LEASE,
    message,
    new_queue,
    sizes,
    take,
)


def prefetching(driver: Driver) -> Any:
    if not isinstance(driver, Prefetch):
        pytest.skip(f"{type(driver).__name__} has no prefetch")
    return driver


def prefetch(driver: Any, *queues: str, lease: float = LEASE) -> Reservation:
    _, found = driver.ack_many_and_claim([], None, list(queues), lease, 1)
    assert found, f"expected a job on {queues}"
    return found[0]  # type: ignore[no-any-return]


def test_a_prefetched_claim_is_reserved_and_shows_the_attempt_it_will_be(driver: Driver) -> None:
    drv = prefetching(driver)
    queue = new_queue()
    driver.push(message(queue, 1))
    held = prefetch(drv, queue)
    assert held.attempts == 1
    assert held.payload == b'{"n": 1}'
    assert sizes(driver, queue) == (0, 0, 1)
    assert driver.reserve([queue], LEASE) is None


def test_a_prefetch_never_started_costs_no_attempt(driver: Driver) -> None:
    drv = prefetching(driver)
    queue = new_queue()
    driver.push(message(queue))
    assert prefetch(drv, queue).release(0) is True
    assert take(driver, queue).attempts == 1


def test_a_prefetch_whose_lease_ran_out_comes_back_uncounted(driver: Driver) -> None:
    drv = prefetching(driver)
    queue = new_queue()
    driver.push(message(queue))
    prefetch(drv, queue, lease=SHORT_LEASE)
    time.sleep(SHORT_LEASE + GRACE)
    assert take(driver, queue).attempts == 1


def test_begin_counts_the_attempt_once_even_when_repeated(driver: Driver) -> None:
    drv = prefetching(driver)
    queue = new_queue()
    driver.push(message(queue))
    first = take(driver, queue, lease=SHORT_LEASE)
    time.sleep(SHORT_LEASE + GRACE)
    held = prefetch(drv, queue, lease=SHORT_LEASE)
    assert held.attempts == 2
    assert held.begin() is True  # type: ignore[attr-defined]
    assert held.begin() is True  # type: ignore[attr-defined]  # a retry after a lost reply
    assert first.ack() is False
    time.sleep(SHORT_LEASE + GRACE)
    assert take(driver, queue).attempts == 3


def test_begin_after_the_lease_was_lost_changes_nothing(driver: Driver) -> None:
    drv = prefetching(driver)
    queue = new_queue()
    driver.push(message(queue))
    stale = prefetch(drv, queue, lease=SHORT_LEASE)
    time.sleep(SHORT_LEASE + GRACE)
    owner = take(driver, queue)
    assert stale.begin() is False  # type: ignore[attr-defined]
    assert owner.attempts == 1
    assert owner.ack() is True


def test_ack_many_and_claim_prefetches_several_in_order_uncounted(driver: Driver) -> None:
    drv = prefetching(driver)
    queue = new_queue()
    for n in range(5):
        driver.push(message(queue, n))
    acked, claimed = drv.ack_many_and_claim([], None, [queue], SHORT_LEASE, 3)
    assert acked == []
    assert [r.payload for r in claimed] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert [r.attempts for r in claimed] == [1, 1, 1]
    assert len({r.token for r in claimed}) == 3, "each claim has its own token"
    assert sizes(driver, queue) == (2, 0, 3)
    time.sleep(SHORT_LEASE + GRACE)  # never started: all three come back uncounted
    assert sorted(take(driver, queue).attempts for _ in range(5)) == [1, 1, 1, 1, 1]


def test_ack_many_and_claim_acks_several_begins_one_and_stops_when_the_queue_is_dry(
    driver: Driver,
) -> None:
    drv = prefetching(driver)
    queue = new_queue()
    for n in range(4):
        driver.push(message(queue, n))
    _, (a, b, c) = drv.ack_many_and_claim([], None, [queue], SHORT_LEASE, 3)
    acked, claimed = drv.ack_many_and_claim([a, b], c, [queue], SHORT_LEASE, 4)
    assert acked == [True, True]
    assert [r.payload for r in claimed] == [b'{"n": 3}'], "one left: fewer than asked"
    assert sizes(driver, queue) == (0, 0, 2)
    assert a.ack() is False and b.release(0) is False, "acknowledged: their tokens are spent"
    time.sleep(SHORT_LEASE + GRACE)  # c was begun (counted), the last claim was not
    attempts = {r.payload: r.attempts for r in (take(driver, queue), take(driver, queue))}
    assert attempts == {b'{"n": 2}': 2, b'{"n": 3}': 1}


def test_ack_many_and_claim_reports_a_lost_lease_and_still_acks_the_rest(driver: Driver) -> None:
    drv = prefetching(driver)
    queue, other = new_queue(), new_queue()
    driver.push(message(queue, 0))
    driver.push(message(other, 1))
    stale = take(driver, queue, lease=SHORT_LEASE)
    kept = take(driver, other)
    time.sleep(SHORT_LEASE + GRACE)
    owner = take(driver, queue)
    acked, claimed = drv.ack_many_and_claim([stale, kept], None, [queue, other], LEASE, 0)
    assert acked == [False, True] and claimed == []
    assert sizes(driver, other) == (0, 0, 0)
    assert owner.ack() is True, "the new owner's claim was untouched"


def test_ack_many_and_claim_with_count_claims_started_jobs(driver: Driver) -> None:
    drv = prefetching(driver)
    queue = new_queue()
    driver.push(message(queue, 0))
    _, claimed = drv.ack_many_and_claim([], None, [queue], SHORT_LEASE, 1, count=True)
    assert [r.attempts for r in claimed] == [1]
    time.sleep(SHORT_LEASE + GRACE)
    assert take(driver, queue).attempts == 2
