"""``process.Spin``: the executor child polls its pipe for a moment before sleeping on it.
It must return as soon as there is something to read (or the pipe closed), and give up after
its time otherwise, so that an idle child goes to sleep instead of burning a core."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator

import pytest

from conveyor.worker.process import Spin


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


def test_zero_does_not_poll(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    began = time.perf_counter()
    Spin(r, 0.0)()
    assert time.perf_counter() - began < 0.01
