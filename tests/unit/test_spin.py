"""``process.Spin``: the executor child polls its pipe for a moment before sleeping on it.
It must return as soon as there is something to read (or the pipe closed), and give up after
its time otherwise, so that an idle child goes to sleep instead of burning a core."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Job
from conveyor.dispatch import build_envelope
from conveyor.events import EventBus
from conveyor.registry import Registry
from conveyor.worker.async_child import ConcurrentRunner
from conveyor.worker.executor import Attempt, Executor, WorkerDefaults
from conveyor.worker.outcome import Kind
from conveyor.worker.process import ChildRunner, Spin


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):  # a test may have closed it
            os.close(fd)


def test_gives_up_after_its_time_on_an_empty_pipe(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    began = time.perf_counter()
    Spin(r, 0.05)()
    took = time.perf_counter() - began
    assert 0.05 <= took < 1.0


def test_returns_at_once_when_something_is_already_there(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b"x")
    began = time.perf_counter()
    Spin(r, 5.0)()
    assert time.perf_counter() - began < 1.0


def test_returns_when_something_arrives_while_it_polls(pipe: tuple[int, int]) -> None:
    r, w = pipe
    threading.Timer(0.05, os.write, (w, b"x")).start()
    began = time.perf_counter()
    Spin(r, 5.0)()
    took = time.perf_counter() - began
    assert 0.04 <= took < 2.0, "returned before the write, or polled on past it"
    assert os.read(r, 1) == b"x"


def test_returns_when_the_writer_closes_the_pipe(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.close(w)
    began = time.perf_counter()
    Spin(r, 5.0)()
    assert time.perf_counter() - began < 1.0, "a closed pipe must end the spin (worker gone)"


def test_zero_returns_at_once_on_an_empty_pipe(pipe: tuple[int, int]) -> None:
    """``--spin 0``: the child goes straight to its blocking read (the bound leaves room for
    a loaded machine; a spin that read 0 as "no limit" would never return)."""
    r, _ = pipe
    began = time.perf_counter()
    Spin(r, 0.0)()
    assert time.perf_counter() - began < 0.5


class Quick(Job):
    def handle(self) -> None:
        pass


def _child_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_one_and_idle(runner: ChildRunner | ConcurrentRunner) -> float:
    """Run one job in the runner's child, let it idle, and return the child's CPU seconds."""
    _, payload = build_envelope(
        Quick(), queue=None, connection="test", default_queue="default", max_payload=1 << 20
    )
    attempt = Attempt("job-1", "default", "test", payload, 1)
    if isinstance(runner, ChildRunner):
        runner.start(attempt)
        outcome = runner.wait(10.0, lambda: True)
    else:
        runner.start(attempt, 10.0, concurrent=False)
        done = runner.collect(10.0)
        assert len(done) == 1
        outcome = done[0][1]
    assert outcome.kind is Kind.COMPLETED
    time.sleep(0.5)
    assert runner.child_pid is not None
    return _child_cpu_seconds(runner.child_pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads CPU time from /proc")
@pytest.mark.parametrize("runner_class", [ChildRunner, ConcurrentRunner])
def test_the_executor_child_polls_for_its_setting_after_a_job(
    runner_class: type[ChildRunner] | type[ConcurrentRunner],
) -> None:
    """The setting reaches the child, and the child polls after a job rather than at once
    sleeping: a 0.3 s spin costs it CPU that no spin does not."""
    executor = Executor(Registry(), EventBus(), WorkerDefaults(tries=1, backoff=None, timeout=None))
    cpu = {}
    for spin in (0.0, 0.3):
        runner = runner_class(lambda: executor, None, spin)
        try:
            cpu[spin] = _run_one_and_idle(runner)
        finally:
            runner.stop()
    assert cpu[0.3] - cpu[0.0] >= 0.08, cpu
