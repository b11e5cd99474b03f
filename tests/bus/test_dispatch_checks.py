"""What dispatch() refuses, with a message that says what to pass instead; and one bulk write."""

from __future__ import annotations

import functools
import types
from typing import Any

import pytest

from conveyor import Conveyor, ConveyorError, batch, chain
from conveyor.drivers.database.driver import DatabaseDriver

from .jobs import Notify, Step, on_then


def _nested() -> Any:
    def inner(batch: Any) -> None: ...

    return inner


class Holder:
    def method(self, batch: Any) -> None: ...


def _from_main() -> Any:
    def fn(batch: Any) -> None: ...

    script_fn = types.FunctionType(fn.__code__, {"__name__": "__main__"}, "fn")
    script_fn.__qualname__ = "fn"  # as if defined at the top level of the script being run
    return script_fn


@pytest.mark.parametrize(
    ("callback", "why"),
    [
        (lambda batch: None, "lambda"),
        (_nested(), "closure"),
        (Holder().method, "bound method"),
        (print, "only plain functions and Job instances"),
        (functools.partial(on_then), "only plain functions and Job instances"),
        (_from_main(), "__main__"),
        (Notify, "pass an instance"),
    ],
)
def test_callbacks_that_cannot_be_stored_are_refused_at_dispatch(
    sqlite_app: Conveyor, callback: Any, why: str
) -> None:
    pending = batch([Step(key="a")]).then(callback)
    with pytest.raises(ConveyorError, match=why) as info:
        pending.dispatch()
    if why != "pass an instance":
        assert "module-level" in str(info.value) or "top level" in str(info.value)
        assert "Job instance" in str(info.value)
    assert sqlite_app.driver().size("default").total == 0  # nothing stored
    with pytest.raises(ConveyorError, match=why):
        chain([Step(key="a")]).catch(callback).dispatch()


def test_functions_and_job_instances_are_accepted(sqlite_app: Conveyor) -> None:
    handle = batch([Step(key="a")]).then(on_then).finally_(Notify(tag="x")).dispatch()
    assert handle.options["then"] == [{"fn": "tests.bus.jobs:on_then"}]
    assert handle.options["finally"][0]["job"]["job"] == Notify.job_name


def test_the_sync_connection_is_refused(sqlite_app: Conveyor) -> None:
    with pytest.raises(ConveyorError, match="cannot hold a chain or a batch"):
        batch([Step(key="a")]).on_connection("sync").dispatch()
    with pytest.raises(ConveyorError, match="cannot hold a chain or a batch"):
        chain([Step(key="a")]).on_connection("sync").dispatch()


def test_bad_chains_and_batches_are_refused(sqlite_app: Conveyor) -> None:
    with pytest.raises(ConveyorError, match="at least one job"):
        chain([]).dispatch()
    with pytest.raises(ConveyorError, match="chain\\(\\) takes jobs"):
        chain([Step(key="a"), "not a job"]).dispatch()  # type: ignore[list-item]
    with pytest.raises(ConveyorError, match="batch\\(\\) takes jobs"):
        batch([42]).dispatch()  # type: ignore[list-item]
    with pytest.raises(ConveyorError, match="share one connection"):
        chain(
            [Step(key="a").on_connection("bus"), Step(key="b").on_connection("database")]
        ).dispatch()
    with pytest.raises(ConveyorError, match="at most 191"):
        batch([]).name("x" * 300)


def test_a_batch_of_2000_jobs_is_one_write(sqlite_app: Conveyor) -> None:
    driver = sqlite_app.driver()
    assert isinstance(driver, DatabaseDriver)
    driver.size("default")  # open this thread's connection and migrate
    statements: list[str] = []
    driver._conn.raw.set_trace_callback(statements.append)  # type: ignore[union-attr]
    handle = batch([Step(key=str(i)) for i in range(2000)]).then(on_then).dispatch()
    driver._conn.raw.set_trace_callback(None)  # type: ignore[union-attr]
    assert [s for s in statements if s.startswith("BEGIN")] == ["BEGIN IMMEDIATE"]
    assert [s for s in statements if s == "COMMIT"] == ["COMMIT"]
    assert handle.total_jobs == 2000 and driver.size("default").pending == 2000
