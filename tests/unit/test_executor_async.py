"""``Executor.execute_async``: several attempts on one event loop, as ``--concurrency`` runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor import Job
from conveyor.dispatch import build_envelope
from conveyor.envelope import decode
from conveyor.events import Event
from conveyor.worker.executor import Attempt, Executor
from conveyor.worker.outcome import Kind, Outcome

LOG: list[Any] = []


class Nap(Job):
    n: int = 0

    async def handle(self) -> None:
        LOG.append(("enter", self.n))
        await asyncio.sleep(0.05)
        LOG.append(("exit", self.n))


class Stuck(Job):
    tries = 2
    timeout = 0.05

    async def handle(self) -> None:
        await asyncio.sleep(30)

    async def failed(self, exc: BaseException) -> None:
        await asyncio.sleep(0)
        LOG.append(("failed", type(exc).__name__))


class StuckFailOnTimeout(Stuck):
    tries = 5
    fail_on_timeout = True


class RaisesTimeoutError(Job):
    """A job's own TimeoutError (a client's) is an ordinary exception, not the job's timeout."""

    tries = 3
    timeout = 30

    async def handle(self) -> None:
        raise TimeoutError("the API did not answer")


class SyncWorks(Job):
    def handle(self) -> None:
        LOG.append("sync ran")


class AsyncAround:
    async def handle(self, job: Job, call_next: Any) -> None:
        LOG.append("around:before")
        await call_next(job)
        LOG.append("around:after")


class PassThrough:
    def handle(self, job: Job, call_next: Any) -> Any:
        LOG.append("pass")
        return call_next(job)


class Wrapped(Nap):
    def middleware(self) -> list[Any]:
        return [PassThrough(), AsyncAround()]


@pytest.fixture(autouse=True)
def _reset() -> None:
    LOG.clear()


def attempt_of(job: Job, attempts: int = 1, job_id: str = "job-1") -> Attempt:
    payload = build_envelope(
        job, queue=None, connection="database", default_queue="default", max_payload=1 << 20
    )[1]
    return Attempt(job_id, "default", "database", payload, attempts)


def run(executor: Executor, job: Job, attempts: int = 1) -> Outcome:
    timeout = type(job).timeout
    return asyncio.run(executor.execute_async(attempt_of(job, attempts), timeout))


def test_async_jobs_on_one_loop_overlap(executor: Executor) -> None:
    async def all_of_them() -> list[Outcome]:
        attempts = [attempt_of(Nap(n=i), job_id=f"job-{i}") for i in range(5)]
        return await asyncio.gather(*(executor.execute_async(a, None) for a in attempts))

    outcomes = asyncio.run(all_of_them())
    assert [o.kind for o in outcomes] == [Kind.COMPLETED] * 5
    assert [step for step, _ in LOG[:5]] == ["enter"] * 5, "each waited for the one before"


def test_the_async_dispatch_flag_follows_handle() -> None:
    assert decode(attempt_of(Nap()).payload).async_handle is True
    assert decode(attempt_of(SyncWorks()).payload).async_handle is False


def test_timeout_cancels_the_job_and_retries_then_fails_with_the_hook_awaited(
    executor: Executor, events: list[Event]
) -> None:
    first = run(executor, Stuck(), attempts=1)
    assert first.kind is Kind.RELEASED
    assert "JobTimedOut" in first.reason and "0.05s timeout" in first.reason
    assert first.payload is not None and decode(first.payload).exceptions == 1
    assert LOG == [], "failed() must wait for the last try"
    last = run(executor, Stuck(), attempts=2)
    assert last.kind is Kind.FAILED
    assert "attempt 2 of 2 failed" in last.reason
    assert LOG == [("failed", "JobTimedOut")]
    assert "JobTimedOut" in [type(e).__name__ for e in events]


def test_fail_on_timeout_fails_at_the_first_timeout(executor: Executor) -> None:
    outcome = run(executor, StuckFailOnTimeout(), attempts=1)
    assert outcome.kind is Kind.FAILED
    assert "fail_on_timeout" in outcome.reason


def test_a_timeout_error_raised_by_the_job_is_an_ordinary_exception(executor: Executor) -> None:
    outcome = run(executor, RaisesTimeoutError(), attempts=1)
    assert outcome.kind is Kind.RELEASED
    assert outcome.reason == "TimeoutError: the API did not answer"


def test_sync_and_async_middleware_wrap_an_async_handle(executor: Executor) -> None:
    outcome = run(executor, Wrapped(n=7))
    assert outcome.kind is Kind.COMPLETED
    assert LOG == ["pass", "around:before", ("enter", 7), ("exit", 7), "around:after"]


def test_the_plain_executor_runs_the_same_middleware_the_same_way(executor: Executor) -> None:
    """``--concurrency 1`` (``execute``) and the event loop (``execute_async``) agree."""
    outcome = executor.execute(attempt_of(Wrapped(n=7)))
    assert outcome.kind is Kind.COMPLETED
    assert LOG == ["pass", "around:before", ("enter", 7), ("exit", 7), "around:after"]


def test_a_sync_job_runs_on_the_loop_too(executor: Executor) -> None:
    assert run(executor, SyncWorks()).kind is Kind.COMPLETED
    assert LOG == ["sync ran"]
