"""QueueFake: every way of dispatching is recorded and nothing is stored; the assertions pass
on what was dispatched and fail with messages that list what was dispatched instead."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from conveyor import (
    Conveyor,
    PendingBatch,
    batch,
    chain,
    dispatch,
    dispatch_if,
    dispatch_many,
    dispatch_unless,
)
from conveyor.testing import QueueFake, current_fake
from tests.testing.jobs import NotifySlack, SendWelcomeEmail, Step, on_then


def fails(expected: str) -> pytest.RaisesExc[AssertionError]:
    return pytest.raises(AssertionError, match=f"^{re.escape(expected)}$")


def test_every_way_of_dispatching_is_recorded_and_nothing_stored(conveyor_app: Conveyor) -> None:
    with QueueFake(conveyor_app) as fake:
        SendWelcomeEmail(user_id=1).dispatch()
        dispatch(SendWelcomeEmail(user_id=2))
        dispatch_many([SendWelcomeEmail(user_id=3), SendWelcomeEmail(user_id=4)])
        dispatch_if(True, SendWelcomeEmail(user_id=5))
        dispatch_unless(True, SendWelcomeEmail(user_id=99))
        threading.Thread(target=lambda: SendWelcomeEmail(user_id=6).dispatch()).start()

        async def from_a_coroutine() -> None:
            SendWelcomeEmail(user_id=7).dispatch()

        asyncio.run(from_a_coroutine())
        chain([Step(key="a"), Step(key="b")]).dispatch()
        batch([Step(key="c")]).dispatch()
    for thread in threading.enumerate():
        if thread is not threading.current_thread():
            thread.join(5)
    ids = sorted(job.user_id for job in fake.dispatched(SendWelcomeEmail))
    assert ids == [1, 2, 3, 4, 5, 6, 7]
    assert [job.key for job in fake.dispatched(Step)] == ["a", "c"]
    # the real connection was put back and never received anything
    assert conveyor_app.driver().size("default").total == 0


def test_assert_dispatched_where_lists_what_was_dispatched(conveyor_fake: QueueFake) -> None:
    SendWelcomeEmail(user_id=2).dispatch()
    NotifySlack(user_id=1).dispatch()
    conveyor_fake.assert_dispatched(SendWelcomeEmail)
    conveyor_fake.assert_dispatched(SendWelcomeEmail, lambda job: job.user_id == 2)
    with fails(
        "SendWelcomeEmail was not dispatched where <lambda>. Dispatched: "
        "SendWelcomeEmail(user_id=2) on database/default; NotifySlack(user_id=1) on "
        "database/default"
    ):
        conveyor_fake.assert_dispatched(SendWelcomeEmail, lambda job: job.user_id == 1)


def test_queue_connection_and_delay(conveyor_fake: QueueFake) -> None:
    SendWelcomeEmail(user_id=1).delay(timedelta(minutes=10)).on_queue("emails").dispatch()
    conveyor_fake.assert_dispatched_on("emails", SendWelcomeEmail)
    conveyor_fake.assert_dispatched(
        SendWelcomeEmail, queue="emails", connection="database", delay=600
    )
    conveyor_fake.assert_dispatched(SendWelcomeEmail, delay=timedelta(minutes=10))
    with fails(
        "SendWelcomeEmail was not dispatched on queue 'default'. Dispatched: "
        "SendWelcomeEmail(user_id=1) on database/emails, delay 600s"
    ):
        conveyor_fake.assert_dispatched_on("default", SendWelcomeEmail)
    with fails(
        "SendWelcomeEmail was not dispatched on connection 'sync' with a delay of 60s. "
        "Dispatched: SendWelcomeEmail(user_id=1) on database/emails, delay 600s"
    ):
        conveyor_fake.assert_dispatched(SendWelcomeEmail, connection="sync", delay=60)


def test_counts_and_absence(conveyor_fake: QueueFake) -> None:
    with fails("SendWelcomeEmail was not dispatched. Nothing was dispatched."):
        conveyor_fake.assert_dispatched(SendWelcomeEmail)
    conveyor_fake.assert_nothing_dispatched()
    conveyor_fake.assert_not_dispatched(SendWelcomeEmail)
    SendWelcomeEmail(user_id=1).dispatch()
    SendWelcomeEmail(user_id=1).dispatch()
    conveyor_fake.assert_dispatched_times(SendWelcomeEmail, 2)
    conveyor_fake.assert_dispatched_times(NotifySlack, 0)
    conveyor_fake.assert_not_dispatched(SendWelcomeEmail, lambda job: job.user_id == 2)
    listed = (
        "Dispatched: SendWelcomeEmail(user_id=1) on database/default; "
        "SendWelcomeEmail(user_id=1) on database/default"
    )
    with fails(f"SendWelcomeEmail was dispatched 2 times, expected 3. {listed}"):
        conveyor_fake.assert_dispatched_times(SendWelcomeEmail, 3)
    with fails(f"SendWelcomeEmail was dispatched where <lambda> 2 times, expected none. {listed}"):
        conveyor_fake.assert_not_dispatched(SendWelcomeEmail, lambda job: job.user_id == 1)
    with fails(f"Expected nothing dispatched. {listed}"):
        conveyor_fake.assert_nothing_dispatched()


def test_a_long_list_is_cut(conveyor_fake: QueueFake) -> None:
    dispatch_many(NotifySlack(user_id=n) for n in range(25))
    with pytest.raises(AssertionError) as raised:
        conveyor_fake.assert_dispatched(SendWelcomeEmail)
    assert str(raised.value).endswith("NotifySlack(user_id=19) on database/default; and 5 more")


def test_only_some_classes_are_faked(conveyor_app: Conveyor) -> None:
    with QueueFake(conveyor_app, only=[SendWelcomeEmail]) as fake:
        SendWelcomeEmail(user_id=1).dispatch()
        NotifySlack(user_id=1).dispatch()
    fake.assert_dispatched(SendWelcomeEmail)
    fake.assert_not_dispatched(NotifySlack)
    assert conveyor_app.driver().size("default").pending == 1
    with QueueFake(conveyor_app, except_=[SendWelcomeEmail]) as fake:
        SendWelcomeEmail(user_id=2).dispatch()
        NotifySlack(user_id=2).dispatch()
    fake.assert_dispatched(NotifySlack)
    fake.assert_not_dispatched(SendWelcomeEmail)
    assert conveyor_app.driver().size("default").pending == 2


def test_as_a_decorator_of_sync_and_async_functions(conveyor_app: Conveyor) -> None:
    seen: list[QueueFake] = []

    @QueueFake(conveyor_app)
    def register() -> None:
        SendWelcomeEmail(user_id=1).dispatch()
        seen.append(current_fake())

    @QueueFake(conveyor_app)
    async def register_async() -> None:
        await asyncio.sleep(0)
        SendWelcomeEmail(user_id=2).dispatch()
        seen.append(current_fake())

    register()
    asyncio.run(register_async())
    seen[0].assert_dispatched(SendWelcomeEmail, lambda job: job.user_id == 1)
    seen[1].assert_dispatched(SendWelcomeEmail, lambda job: job.user_id == 2)
    assert conveyor_app.driver().size("default").total == 0
    with pytest.raises(RuntimeError, match="no QueueFake is on"):
        current_fake()


def test_chains(conveyor_fake: QueueFake) -> None:
    chain([Step(key="a"), Step(key="b"), NotifySlack(user_id=1)]).dispatch()
    chain([Step(key="x"), batch([Step(key="y")]).name("parts")]).dispatch()
    conveyor_fake.assert_chained([Step, Step, NotifySlack])
    conveyor_fake.assert_chained([Step(key="a"), Step, NotifySlack(user_id=1)])
    conveyor_fake.assert_chained([Step(key="x"), PendingBatch])
    with fails(
        "No chain Step -> NotifySlack was dispatched. Chains dispatched: "
        "Step(key='a', boom=False) -> Step(key='b', boom=False) -> NotifySlack(user_id=1); "
        "Step(key='x', boom=False) -> batch(parts)"
    ):
        conveyor_fake.assert_chained([Step, NotifySlack])
    with pytest.raises(AssertionError, match=r"^No chain Step\(key='b', boom=False\) -> Step ->"):
        conveyor_fake.assert_chained([Step(key="b"), Step, NotifySlack])


def test_batches(conveyor_fake: QueueFake) -> None:
    conveyor_fake.assert_nothing_batched()
    batch([Step(key="a"), [Step(key="b"), NotifySlack(user_id=1)]]).name("import").then(
        on_then
    ).allow_failures().on_queue("imports").dispatch()
    conveyor_fake.assert_batched()
    conveyor_fake.assert_batched(lambda b: b.name == "import" and b.total_jobs == 3)
    conveyor_fake.assert_batch_count(1)
    found = conveyor_fake.batches()[0]
    assert found.allows_failures and found.queue == "imports" and found.has(Step)
    assert found.callbacks["then"] == ["tests.testing.jobs:on_then"]
    assert found.jobs == [Step(key="a"), Step(key="b")]
    with fails(
        "No batch was dispatched where <lambda>. Batches dispatched: 'import' of 3 jobs "
        "[Step, Step]"
    ):
        conveyor_fake.assert_batched(lambda b: b.total_jobs == 10)
    with fails(
        "1 batch dispatched, expected 2. Batches dispatched: 'import' of 3 jobs [Step, Step]"
    ):
        conveyor_fake.assert_batch_count(2)


def test_the_fixture_needs_no_import(project: Path) -> None:
    """A project that installs Conveyor has conveyor_fake through the entry point."""
    (project / "test_ping.py").write_text(
        textwrap.dedent(
            """
            from conveyor import Job

            class Ping(Job):
                n: int

                def handle(self) -> None: ...

            def test_ping(conveyor_fake):
                Ping(n=1).dispatch()
                conveyor_fake.assert_dispatched(Ping, lambda job: job.n == 1)
                conveyor_fake.assert_dispatched(Ping, lambda job: job.n == 2)
            """
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_ping.py"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "1 failed" in run.stdout, run.stdout + run.stderr
    assert "Ping was not dispatched where <lambda>. Dispatched: Ping(n=1) on database/default" in (
        run.stdout
    )
    assert not (project / "conveyor.db").exists()  # nothing was stored
