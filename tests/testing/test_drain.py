"""drain(): what the fake recorded runs as a worker would run it: chains hand over link by link,
batches count and fire their callbacks once, releases run again until the tries are spent."""

from __future__ import annotations

import pytest

from conveyor import batch, chain
from conveyor.testing import QueueFake, State
from tests.testing.jobs import (
    Charge,
    Flaky,
    Forever,
    Notify,
    NotifySlack,
    Register,
    SendWelcomeEmail,
    Step,
    on_catch,
    on_chain_failed,
    on_finally,
    on_then,
)


def test_jobs_dispatched_inside_jobs_run_too(conveyor_fake: QueueFake, ran: list[str]) -> None:
    Register(user_id=1).dispatch()
    drained = conveyor_fake.drain()
    assert ran == ["register 1", "welcome 1", "slack 1"]
    assert drained.count("completed") == 3
    conveyor_fake.assert_dispatched(SendWelcomeEmail)
    assert conveyor_fake.drain().runs == []  # nothing is left


def test_a_chain_runs_link_by_link(conveyor_fake: QueueFake, ran: list[str]) -> None:
    chain([Step(key="a"), Step(key="b"), NotifySlack(user_id=1)]).dispatch()
    conveyor_fake.drain().assert_nothing_failed()
    assert ran == ["a", "b", "slack 1"]
    # each next link was dispatched by the worker's hand-over, carrying the rest
    conveyor_fake.assert_chained([Step(key="b"), NotifySlack])


def test_a_failed_link_stops_the_chain_and_calls_catch(
    conveyor_fake: QueueFake, ran: list[str]
) -> None:
    chain([Step(key="a", boom=True), Step(key="b")]).catch(on_chain_failed).dispatch()
    drained = conveyor_fake.drain()
    assert ran == ["a", "chain failed: ValueError: a exploded"]
    assert [run.job_name.rpartition(":")[2] for run in drained.failures] == ["Step"]
    with pytest.raises(AssertionError, match=r"^1 job\(s\) failed while draining: Step: "):
        drained.assert_nothing_failed()
    [failed] = conveyor_fake.failed()
    assert "a exploded" in failed.exception


def test_a_batch_fires_then_and_finally_once(conveyor_fake: QueueFake, ran: list[str]) -> None:
    pending = batch([Step(key="a"), [Step(key="b"), Step(key="c")]])
    b = pending.then(on_then).then(Notify(tag="done")).finally_(on_finally).dispatch()
    conveyor_fake.drain().assert_nothing_failed()
    assert ran[:3] == ["a", "b", "c"]
    assert sorted(ran[3:]) == ["finally failed=0 cancelled=False", "notify done 3", "then 3/3"]
    fresh = b.fresh()
    assert fresh.finished() and fresh.progress() == 100


def test_a_failure_cancels_the_batch(conveyor_fake: QueueFake, ran: list[str]) -> None:
    pending = batch([Step(key="a", boom=True), Step(key="b")])
    b = pending.then(on_then).catch(on_catch).finally_(on_finally).dispatch()
    conveyor_fake.drain()
    # b skipped its work: its batch was cancelled by a's failure
    assert ran == ["a", "catch ValueError: a exploded", "finally failed=1 cancelled=True"]
    assert b.fresh().cancelled() and b.fresh().failed_job_ids == [b.fresh().failed_job_ids[0]]


def test_allow_failures_runs_every_job(conveyor_fake: QueueFake, ran: list[str]) -> None:
    pending = batch([Step(key="a", boom=True), Step(key="b")]).allow_failures()
    pending.then(on_then).finally_(on_finally).dispatch()
    conveyor_fake.drain()
    assert ran == ["a", "b", "finally failed=1 cancelled=False"]


def test_releases_run_again_until_the_tries_are_spent(
    conveyor_fake: QueueFake, ran: list[str]
) -> None:
    Flaky(key="f").dispatch()
    Charge(order_id=1).dispatch()
    drained = conveyor_fake.drain()
    assert ran == ["f attempt 1", "charge 1", "f attempt 2", "charge 1", "charge 1"]
    assert [drained.count(k) for k in ("completed", "released", "failed")] == [1, 3, 1]
    drained.runs[-1].assert_failed(with_=ValueError)
    assert [r.state for r in conveyor_fake.recorded()] == [State.COMPLETED, State.FAILED]


def test_a_job_that_dispatches_itself_for_ever_is_stopped(conveyor_fake: QueueFake) -> None:
    Forever().dispatch()
    with pytest.raises(AssertionError, match=r"^drain\(\) ran 50 attempts and jobs are still"):
        conveyor_fake.drain(max_runs=50)
