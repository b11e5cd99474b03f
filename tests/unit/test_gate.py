"""``process.Gate``: a job queued in the executor's pipe is either started by the child or
recalled by the control process, never both and never neither; a recall takes every queued
job the child has not started."""

from __future__ import annotations

import multiprocessing
from typing import Any

from conveyor.worker.process import Gate

ROUNDS = 2000


def test_the_first_of_start_and_recall_wins() -> None:
    gate = Gate(multiprocessing.get_context("fork"))
    assert gate.enter(1) is True
    assert gate.recall(1, 1) == 1, "a started job cannot be recalled"
    assert gate.recall(2, 2) == 1, "job 2 is recalled: 1 is the last started"
    assert gate.enter(2) is False, "a recalled job must not start"
    assert gate.enter(3) is True, "the next queued job is not affected"


def test_a_recall_takes_every_queued_job_past_the_last_started() -> None:
    gate = Gate(multiprocessing.get_context("fork"))
    assert gate.enter(1) is True and gate.enter(2) is True
    assert gate.recall(3, 5) == 2, "3, 4 and 5 recalled"
    assert [gate.enter(seq) for seq in (3, 4, 5)] == [False, False, False]
    assert gate.enter(6) is True, "a job queued after the recall starts"


def test_a_recall_spares_a_job_taken_as_started_but_not_yet_entered() -> None:
    """Job 2 was taken off the queue as started (its predecessor's outcome came back) while
    the child was still on its way to it; recalling 3 and 4 must not stop it."""
    gate = Gate(multiprocessing.get_context("fork"))
    assert gate.enter(1) is True
    assert gate.recall(3, 4) == 1
    assert gate.enter(2) is True
    assert [gate.enter(seq) for seq in (3, 4)] == [False, False]


def _child_side(gate: Gate, barrier: Any, started: Any) -> None:
    for seq in range(1, ROUNDS + 1):
        barrier.wait()
        started[seq - 1] = gate.enter(seq)


def test_racing_processes_never_both_win_nor_both_lose() -> None:
    ctx = multiprocessing.get_context("fork")
    gate = Gate(ctx)
    barrier = ctx.Barrier(2)
    started = ctx.Array("b", ROUNDS)
    child = ctx.Process(target=_child_side, args=(gate, barrier, started))
    child.start()
    recalled = []
    for seq in range(1, ROUNDS + 1):
        barrier.wait()
        recalled.append(gate.recall(seq, seq) < seq)
    child.join(30)
    assert child.exitcode == 0
    outcomes = [(bool(s), r) for s, r in zip(started, recalled, strict=True)]
    assert all(s != r for s, r in outcomes), "exactly one side wins each round"
