"""run_job: one attempt through the real executor and middleware; the result's assertions
read how it ended and say how it ended instead when they fail."""

from __future__ import annotations

import asyncio
import re

import pytest

from conveyor import Conveyor
from conveyor.testing import QueueFake, run_job, run_job_async
from tests.testing.jobs import (
    AsyncStep,
    Charge,
    Deletes,
    Fails,
    NotifySlack,
    Register,
    Releases,
    SendWelcomeEmail,
    Wrapped,
)


def fails(expected: str) -> pytest.RaisesExc[AssertionError]:
    return pytest.raises(AssertionError, match=f"^{re.escape(expected)}$")


def test_completed(conveyor_app: Conveyor, ran: list[str]) -> None:
    run = run_job(SendWelcomeEmail(user_id=1))
    run.assert_completed()
    run.assert_not_failed()
    run.assert_not_released()
    assert ran == ["welcome 1"]
    with fails("SendWelcomeEmail (attempt 1) was expected to fail, but it completed"):
        run.assert_failed()


def test_released_by_the_job(conveyor_app: Conveyor) -> None:
    run = run_job(Releases(seconds=30))
    run.assert_released()
    run.assert_released(delay=30)
    with fails(
        "Releases (attempt 1) was expected to be released with a delay of 10s, but it was "
        "released with a delay of 30s"
    ):
        run.assert_released(delay=10)
    with fails(
        "Releases (attempt 1) was expected to be deleted, but it was released with a delay of 30s"
    ):
        run.assert_deleted()


def test_an_exception_with_tries_left_releases_after_the_backoff(conveyor_app: Conveyor) -> None:
    run = run_job(Charge(order_id=7))
    run.assert_released(delay=10)
    assert isinstance(run.exception, ValueError)
    with fails(
        "Charge (attempt 1) was expected to complete, but it was released with a delay of 10s "
        "after ValueError: card declined for order 7"
    ):
        run.assert_completed()
    run_job(Charge(order_id=7), attempt=2).assert_released(delay=30)
    last = run_job(Charge(order_id=7), attempt=3)
    last.assert_failed()
    last.assert_failed(with_=ValueError)
    last.assert_failed(with_="card declined for order 7")
    with fails(
        "Charge (attempt 3) was expected to fail with KeyError, but it failed: ValueError: card "
        "declined for order 7 (attempt 3 of 3 failed)"
    ):
        last.assert_failed(with_=KeyError)
    with fails(
        "Charge (attempt 3) was expected to not fail, but it failed: ValueError: card declined "
        "for order 7 (attempt 3 of 3 failed)"
    ):
        last.assert_not_failed()


def test_deleted_and_failed_by_the_job(conveyor_app: Conveyor) -> None:
    run_job(Deletes()).assert_deleted()
    failed = run_job(Fails(why="no such user"))
    failed.assert_failed(with_="no such user")
    failed.assert_failed(with_=RuntimeError)
    with fails("Deletes (attempt 1) was expected to complete, but it was deleted"):
        run_job(Deletes()).assert_completed()


def test_middleware_and_async_handle(conveyor_app: Conveyor, ran: list[str]) -> None:
    run_job(Wrapped()).assert_completed()
    run_job(AsyncStep(key="a")).assert_completed()
    assert ran == ["middleware before", "wrapped", "middleware after", "async a"]


def test_from_a_coroutine(conveyor_app: Conveyor, ran: list[str]) -> None:
    async def main() -> None:
        (await run_job_async(AsyncStep(key="b"))).assert_completed()
        (await run_job_async(Charge(order_id=1))).assert_released(delay=10)

    asyncio.run(main())
    assert ran == ["async b", "charge 1"]


def test_what_a_job_dispatches_is_recorded(conveyor_fake: QueueFake) -> None:
    run_job(Register(user_id=3)).assert_completed()
    conveyor_fake.assert_dispatched(SendWelcomeEmail, lambda job: job.user_id == 3)
    conveyor_fake.assert_dispatched_on("slack", NotifySlack)
