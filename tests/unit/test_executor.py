"""One attempt in, one outcome out; nothing a job or its payload does escapes ``execute``."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor import Job
from conveyor.dispatch import build_envelope
from conveyor.envelope import Envelope, decode, encode
from conveyor.events import (
    Event,
    EventBus,
    JobExceptionOccurred,
    JobFailed,
    JobProcessed,
    JobProcessing,
    JobReleased,
)
from conveyor.registry import Registry
from conveyor.worker.executor import Attempt, Executor, WorkerDefaults
from conveyor.worker.outcome import Kind, Outcome

LOG: list[Any] = []


class Works(Job):
    n: int = 0
    tries = 0

    def handle(self) -> None:
        LOG.append(("handle", self.n, self.attempts(), self.job_id))


class Breaks(Job):
    tries = 3
    backoff = [4, 9]

    def handle(self) -> None:
        LOG.append("handle")
        raise ValueError("broken on purpose")

    def failed(self, exc: BaseException) -> None:
        LOG.append(("failed", type(exc).__name__, str(exc)))


class BreaksTwice(Breaks):
    max_exceptions = 2
    tries = 0


class BadHook(Job):
    def handle(self) -> None:
        raise ValueError("first")

    def failed(self, exc: BaseException) -> None:
        raise RuntimeError("hook is broken too")


class Deletes(Job):
    def handle(self) -> None:
        self.delete()


class Releases(Job):
    def handle(self) -> None:
        self.release(12)
        LOG.append("went on after release")


class FailsNow(Job):
    reason: str = ""
    tries = 5

    def handle(self) -> None:
        self.fail(self.reason or ValueError("given up"))

    def failed(self, exc: BaseException) -> None:
        LOG.append(("failed", type(exc).__name__, str(exc)))


class Async(Job):
    n: int = 0

    async def handle(self) -> None:
        LOG.append(("async", self.n))

    async def failed(self, exc: BaseException) -> None:
        LOG.append("async failed")


class AsyncBreaks(Async):
    async def handle(self) -> None:
        raise KeyError("async broken")


class Tagger:
    def __init__(self, name: str) -> None:
        self.name = name

    def handle(self, job: Job, call_next: Any) -> Any:
        LOG.append(f"{self.name}:before")
        result = call_next(job)
        LOG.append(f"{self.name}:after")
        return result


class Skip:
    def handle(self, job: Job, call_next: Any) -> None:
        LOG.append("skipped")


class ReleaseFirst:
    def handle(self, job: Job, call_next: Any) -> None:
        job.release(2)


class Layered(Works):
    def middleware(self) -> list[Any]:
        return [Tagger("outer"), Tagger("inner")]


class Skipped(Works):
    def middleware(self) -> list[Any]:
        return [Tagger("outer"), Skip()]


class Throttled(Works):
    def middleware(self) -> list[Any]:
        return [ReleaseFirst()]


class Typed(Job):
    user_id: int

    def handle(self) -> None:
        LOG.append("typed ran")


@pytest.fixture(autouse=True)
def _reset() -> None:
    LOG.clear()


def payload_of(job: Job) -> bytes:
    return build_envelope(
        job, queue=None, connection="database", default_queue="default", max_payload=1 << 20
    )[1]


def run(executor: Executor, job_or_payload: Job | bytes, attempts: int = 1, **kw: Any) -> Outcome:
    payload = job_or_payload if isinstance(job_or_payload, bytes) else payload_of(job_or_payload)
    return executor.execute(Attempt("job-1", "default", "database", payload, attempts), **kw)


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_completed_with_context_and_events(executor: Executor, events: list[Event]) -> None:
    outcome = run(executor, Works(n=5), attempts=2)
    assert outcome.kind is Kind.COMPLETED
    assert LOG == [("handle", 5, 2, "job-1")]
    assert kinds(events) == ["JobProcessing", "JobProcessed"]
    assert isinstance(events[1], JobProcessed) and events[1].job_name == Works.job_name


def test_exception_before_the_last_try_is_released_with_backoff(
    executor: Executor, events: list[Event]
) -> None:
    first, second = run(executor, Breaks(), 1), run(executor, Breaks(), 2)
    assert (first.kind, first.delay, second.kind, second.delay) == (
        Kind.RELEASED, 4.0, Kind.RELEASED, 9.0,
    )  # fmt: skip
    assert "ValueError: broken on purpose" in first.reason
    assert "Traceback" in first.error
    assert not any(isinstance(x, tuple) for x in LOG), "failed() must not run on a retry"
    assert kinds(events)[:3] == ["JobProcessing", "JobExceptionOccurred", "JobReleased"]


def test_exception_on_the_last_try_fails_and_calls_failed_once(
    executor: Executor, events: list[Event]
) -> None:
    outcome = run(executor, Breaks(), 3)
    assert outcome.kind is Kind.FAILED
    assert LOG == ["handle", ("failed", "ValueError", "broken on purpose")]
    assert "attempt 3 of 3 failed" in outcome.reason
    assert "Traceback" in outcome.error and "broken on purpose" in outcome.error
    failed = [e for e in events if isinstance(e, JobFailed)]
    assert len(failed) == 1 and isinstance(failed[0].exception, ValueError)
    assert any(isinstance(e, JobExceptionOccurred) for e in events)


def test_a_failed_hook_that_raises_is_recorded_not_raised(executor: Executor) -> None:
    outcome = run(executor, BadHook())
    assert outcome.kind is Kind.FAILED
    assert "failed() hook raised" in outcome.error and "hook is broken too" in outcome.error


def test_max_exceptions_counts_in_the_released_payload(executor: Executor) -> None:
    first = run(executor, BreaksTwice(), 1)
    assert first.kind is Kind.RELEASED and first.payload is not None
    assert decode(first.payload).exceptions == 1
    second = run(executor, first.payload, 2)
    assert second.kind is Kind.FAILED
    assert "max_exceptions=2" in second.reason


def test_delete_discards(executor: Executor, events: list[Event]) -> None:
    outcome = run(executor, Deletes())
    assert outcome.kind is Kind.DISCARDED
    assert "deleted" in outcome.reason
    assert not any(isinstance(e, JobFailed) for e in events)


def test_release_is_an_intent_acted_on_after_handle(
    executor: Executor, events: list[Event]
) -> None:
    outcome = run(executor, Releases())
    assert (outcome.kind, outcome.delay, outcome.payload) == (Kind.RELEASED, 12.0, None)
    assert LOG == ["went on after release"]
    released = [e for e in events if isinstance(e, JobReleased)]
    assert [e.delay for e in released] == [12.0]


@pytest.mark.parametrize(
    ("reason", "error_type", "text"),
    [("", "ValueError", "given up"), ("card declined", "RuntimeError", "card declined")],
)
def test_fail_intent_fails_now_despite_tries_left(
    executor: Executor, reason: str, error_type: str, text: str
) -> None:
    outcome = run(executor, FailsNow(reason=reason), 1)
    assert outcome.kind is Kind.FAILED
    assert text in outcome.reason
    assert [("failed", error_type, text)] == LOG


def test_async_handle_and_async_failed_hook(executor: Executor) -> None:
    assert run(executor, Async(n=3)).kind is Kind.COMPLETED
    assert run(executor, Async(n=4)).kind is Kind.COMPLETED
    outcome = run(executor, AsyncBreaks())
    assert outcome.kind is Kind.FAILED and "async broken" in outcome.reason
    assert LOG == [("async", 3), ("async", 4), "async failed"]


def test_middleware_is_an_onion_in_declared_order(executor: Executor) -> None:
    assert run(executor, Layered(n=1)).kind is Kind.COMPLETED
    assert LOG == [
        "outer:before", "inner:before", ("handle", 1, 1, "job-1"), "inner:after", "outer:after",
    ]  # fmt: skip


def test_middleware_may_skip_the_job(executor: Executor) -> None:
    assert run(executor, Skipped()).kind is Kind.COMPLETED
    assert LOG == ["outer:before", "skipped", "outer:after"]


def test_middleware_may_release_the_job(executor: Executor) -> None:
    outcome = run(executor, Throttled())
    assert (outcome.kind, outcome.delay) == (Kind.RELEASED, 2.0)
    assert LOG == []


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b"{not json", "malformed job payload"),
        (encode(Envelope(id="x", job="gone.module:Vanished", args={})), "unknown job"),
        (encode(Envelope(id="x", job=Typed.job_name, args={"user_id": "abc"})), "$.user_id"),
        (encode(Envelope(id="x", job=Typed.job_name, args={})), "user_id"),
    ],
    ids=["malformed", "unknown-job", "wrong-type", "missing-field"],
)
def test_bad_payloads_fail_with_a_reason_that_says_so(
    executor: Executor, payload: bytes, says: str
) -> None:
    outcome = run(executor, payload, attempts=1)
    assert outcome.kind is Kind.FAILED
    assert says in outcome.reason
    assert LOG == []


def test_bad_payload_fails_even_with_tries_left(executor: Executor) -> None:
    payload = encode(Envelope(id="x", job=Typed.job_name, args={"user_id": []}, tries=10))
    assert run(executor, payload, attempts=1).kind is Kind.FAILED


def test_attempts_over_tries_fail_without_running(executor: Executor) -> None:
    outcome = run(executor, Breaks(), attempts=4)
    assert outcome.kind is Kind.FAILED
    assert "MaxAttemptsExceeded" in outcome.reason
    assert [
        (
            "failed",
            "MaxAttemptsExceeded",
            f"{Breaks.job_name}: attempted 3 time(s) already, tries=3",
        )
    ] == LOG


def test_job_settings_win_over_worker_defaults(events: list[Event]) -> None:
    lenient = Executor(Registry(), EventBus(), WorkerDefaults(tries=10, backoff=[1.0]))
    assert run(lenient, Breaks(), 3).kind is Kind.FAILED, "the job's tries=3 wins"
    outcome = run(lenient, FailsNowNoTries(), 1)
    assert (outcome.kind, outcome.delay) == (Kind.RELEASED, 1.0), "worker defaults fill the gaps"


class FailsNowNoTries(Job):
    def handle(self) -> None:
        raise RuntimeError("uses worker defaults")


def test_single_attempt_fails_on_the_first_error(executor: Executor) -> None:
    outcome = run(executor, Breaks(), 1, single_attempt=True)
    assert outcome.kind is Kind.FAILED
    assert "sync connection" in outcome.reason
    assert isinstance(executor.last_exception, ValueError)


def test_processing_event_is_not_emitted_for_a_job_that_does_not_run(
    executor: Executor, events: list[Event]
) -> None:
    run(executor, Breaks(), attempts=9)
    assert not any(isinstance(e, JobProcessing) for e in events)
    assert any(isinstance(e, JobFailed) for e in events)
