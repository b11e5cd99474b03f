"""``process.Gate``: a job queued in the executor's pipe is either started by the child or
recalled by the control process, never both and never neither."""

from __future__ import annotations

import multiprocessing
from typing import Any

from conveyor.worker.process import Gate

ROUNDS = 2000


def test_the_first_of_start_and_recall_wins() -> None:
    gate = Gate(multiprocessing.get_context("fork"))
    assert gate.enter(1) is True
    assert gate.recall(1) is False, "a started job cannot be recalled"
    assert gate.recall(2) is True
    assert gate.enter(2) is False, "a recalled job must not start"
    assert gate.enter(3) is True, "the next queued job is not affected"


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
        recalled.append(gate.recall(seq))
    child.join(30)
    assert child.exitcode == 0
    outcomes = [(bool(s), r) for s, r in zip(started, recalled, strict=True)]
    assert all(s != r for s, r in outcomes), "exactly one side wins each round"
