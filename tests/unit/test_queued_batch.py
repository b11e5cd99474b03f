"""Jobs claimed together are queued in the executor child as one message: nothing reaches the
child before ``send_queued()``, then every job of the message runs, in order, whatever mix of
sync and async jobs it holds. Real forked children, both executors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from conveyor import Job
from conveyor.dispatch import build_envelope
from conveyor.events import EventBus
from conveyor.registry import Registry
from conveyor.worker.async_child import ConcurrentRunner
from conveyor.worker.executor import Attempt, Executor, WorkerDefaults
from conveyor.worker.outcome import Kind, Outcome
from conveyor.worker.process import ChildRunner


class Slow(Job):
    def handle(self) -> None:
        time.sleep(0.2)


class Quick(Job):
    def handle(self) -> None:
        pass


class QuickAsync(Job):
    async def handle(self) -> None:
        await asyncio.sleep(0)


def _attempt(job_id: str, job: Job) -> Attempt:
    _, payload = build_envelope(
        job, queue=None, connection="test", default_queue="default", max_payload=1 << 20
    )
    return Attempt(job_id, "default", "test", payload, 1)


def _executor() -> Executor:
    return Executor(Registry(), EventBus(), WorkerDefaults(tries=1, backoff=None, timeout=None))


@pytest.fixture
def serial() -> Iterator[ChildRunner]:
    runner = ChildRunner(_executor, None, 0.0)
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture
def concurrent() -> Iterator[ConcurrentRunner]:
    runner = ConcurrentRunner(_executor, None, 0.0)
    try:
        yield runner
    finally:
        runner.stop()


def _collect(runner: ConcurrentRunner, n: int, timeout: float) -> list[tuple[str, Outcome]]:
    done: list[tuple[str, Outcome]] = []
    deadline = time.monotonic() + timeout
    while len(done) < n and time.monotonic() < deadline:
        done += runner.collect(deadline - time.monotonic())
    return done


def test_the_serial_child_runs_a_message_of_queued_jobs_in_order(serial: ChildRunner) -> None:
    serial.start(_attempt("a", Slow()))
    for i, job_id in enumerate("bcd"):
        serial.queue(_attempt(job_id, Quick()), i)
    assert serial.queued == 3
    serial.send_queued()
    outcomes = [serial.wait(10.0, lambda: True)]
    for left, job_id in enumerate("bcd"):
        serial.start(_attempt(job_id, Quick()))  # already running: nothing is sent
        assert serial.queued == 2 - left
        outcomes.append(serial.wait(10.0, lambda: True))
    assert [o.kind for o in outcomes] == [Kind.COMPLETED] * 4


def test_queued_jobs_reach_the_child_only_when_sent(concurrent: ConcurrentRunner) -> None:
    concurrent.start(_attempt("a", Slow()), None, concurrent=False)
    concurrent.queue(_attempt("b", Quick()), None, False, 0)
    assert [job_id for job_id, _ in _collect(concurrent, 2, 1.0)] == ["a"]
    concurrent.send_queued()
    assert [job_id for job_id, _ in _collect(concurrent, 1, 5.0)] == ["b"]


def test_a_message_mixing_async_and_sync_jobs_runs_them_all(
    concurrent: ConcurrentRunner,
) -> None:
    """An async job in the middle of a message becomes a task; the jobs after it must still
    start, though nothing more arrives on the pipe to wake the child."""
    concurrent.start(_attempt("a", Slow()), None, concurrent=False)
    batch = [("b", QuickAsync(), True), ("c", Quick(), False), ("d", QuickAsync(), True)]
    for i, (job_id, job, is_async) in enumerate(batch):
        concurrent.queue(_attempt(job_id, job), None, is_async, i)
    concurrent.send_queued()
    done = _collect(concurrent, 4, 10.0)
    assert sorted(job_id for job_id, _ in done) == ["a", "b", "c", "d"]
    assert all(outcome.kind is Kind.COMPLETED for _, outcome in done)
    assert done[0][0] == "a"  # the queued ones wait behind the sync job


def test_a_recalled_message_runs_none_of_its_jobs(serial: ChildRunner) -> None:
    serial.start(_attempt("a", Slow()))
    for i, job_id in enumerate("bc"):
        serial.queue(_attempt(job_id, Quick()), i)
    serial.send_queued()
    assert serial.recall() == set()  # the slow job still runs: neither queued one started
    assert serial.wait(10.0, lambda: True).kind is Kind.COMPLETED
    assert serial.queued == 0
    serial.start(_attempt("e", Quick()))  # the child skipped both and takes the next request
    assert serial.wait(10.0, lambda: True).kind is Kind.COMPLETED
