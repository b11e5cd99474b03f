"""Batches on every backend: callbacks once, failures, cancel, adding jobs, retry, progress."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor import Conveyor, batch, find_batch
from conveyor.bus.batch import Batch
from conveyor.bus.batch_store import BatchRecord
from conveyor.cli.main import cli

from .jobs import Adder, Canceller, Flaky, Notify, Step, on_catch, on_finally, on_then, read_records


def callbacks(project: Path) -> list[str]:
    return [r["event"] for r in read_records(project) if r["event"] in ("then", "catch", "finally")]


def full(pending: object) -> object:
    return pending.then(on_then).catch(on_catch).finally_(on_finally)  # type: ignore[attr-defined]


def test_then_and_finally_fire_once_when_every_job_succeeds(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    handle = full(batch([Step(key=f"j{i}") for i in range(5)]).name("five")).dispatch()
    assert (handle.total_jobs, handle.pending_jobs, handle.progress()) == (5, 5, 0)
    drain(bus_app)
    assert callbacks(project) == ["then", "finally"]
    done = find_batch(handle.id)
    assert done is not None and done.name == "five"
    assert (done.pending_jobs, done.processed_jobs, done.failed_jobs) == (0, 5, 0)
    assert done.finished() and not done.cancelled() and done.progress() == 100
    assert done.finished_at is not None and done.finished_at >= done.created_at


def test_the_first_failure_cancels_the_batch_and_catch_fires_once(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    jobs = [Step(key="a", boom=True), Step(key="b", boom=True), Step(key="c")]
    handle = full(batch(jobs)).dispatch()
    drain(bus_app)
    assert [r["key"] for r in read_records(project, "run")] == ["a"]  # b and c skip: cancelled
    assert callbacks(project) == ["catch", "finally"]
    assert read_records(project, "catch")[0]["error"] == "ValueError: a exploded"
    done = handle.fresh()
    assert done.cancelled() and done.finished() and done.failed_jobs == 1
    assert read_records(project, "finally")[0]["cancelled"] is True


def test_allow_failures_runs_everything_and_reports_the_failed_ids(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    jobs = [Step(key="a"), Step(key="b", boom=True), Step(key="c"), Step(key="d", boom=True)]
    handle = full(batch(jobs)).allow_failures().dispatch()
    drain(bus_app)
    runs = read_records(project, "run")
    assert [r["key"] for r in runs] == ["a", "b", "c", "d"]
    assert callbacks(project) == ["catch", "finally"]  # then: only when every job succeeded
    done = handle.fresh()
    failed_ids = [r["id"] for r in runs if r["key"] in ("b", "d")]
    assert done.failed_job_ids == failed_ids
    assert (done.failed_jobs, done.pending_jobs, done.processed_jobs) == (2, 2, 2)
    assert done.progress() == 50 and done.finished() and not done.cancelled()
    for job_id in failed_ids:
        record = bus_app.driver().failed.get(job_id)
        assert record is not None and handle.id.encode() in record.payload


def test_cancel_mid_batch_skips_the_rest(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    handle = full(batch([Step(key=f"j{i}") for i in range(10)])).dispatch()
    drain(bus_app, max_jobs=3)
    handle.cancel()
    assert handle.cancelled()
    drain(bus_app)
    assert len(read_records(project, "run")) == 3
    assert callbacks(project) == ["finally"]
    done = handle.fresh()
    assert done.finished() and done.processed_jobs == 10 and done.failed_jobs == 0


def test_a_job_can_cancel_its_own_batch(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    handle = batch([Step(key="a"), Canceller(key="stop"), Step(key="b")]).dispatch()
    drain(bus_app)
    assert [r["key"] for r in read_records(project, "run")] == ["a", "stop"]
    assert handle.fresh().cancelled()


def test_jobs_added_from_inside_a_batch_job_run_before_then(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    handle = full(batch([Adder(key="add", count=3), Step(key="other")])).dispatch()
    drain(bus_app)
    runs = [r["key"] for r in read_records(project, "run")]
    assert sorted(runs) == ["add", "add.0", "add.1", "add.2", "other"]
    events = [r["event"] for r in read_records(project)]
    assert events.index("then") > max(i for i, e in enumerate(events) if e == "run")
    done = handle.fresh()
    assert (done.total_jobs, done.processed_jobs) == (5, 5)
    assert read_records(project, "then")[0]["total"] == 5


def test_no_job_can_be_added_once_finished(bus_app: Conveyor, drain: Callable[..., int]) -> None:
    handle = batch([Step(key="a")]).dispatch()
    drain(bus_app)
    with pytest.raises(Exception, match="is finished"):
        handle.fresh().add([Step(key="late")])


def test_an_empty_batch_is_finished_at_once(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    handle = full(batch([])).dispatch()
    assert handle.finished() and handle.progress() == 100
    drain(bus_app)
    assert callbacks(project) == ["then", "finally"]


def test_job_instances_as_callbacks_reach_their_batch(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    handle = batch([Step(key="a"), Step(key="b")]).then(Notify(tag="done")).dispatch()
    drain(bus_app)
    notes = read_records(project, "notify")
    assert notes == [notes[0]] and notes[0]["batch"] == handle.id and notes[0]["processed"] == 2
    assert handle.fresh().processed_jobs == 2  # the callback job is not counted


def test_retrying_a_failed_batch_job_updates_the_batch(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    handle = full(batch([Flaky(key="f"), Step(key="ok")])).allow_failures().dispatch()
    drain(bus_app)
    failed = handle.fresh()
    assert failed.failed_jobs == 1 and failed.finished()
    assert callbacks(project) == ["catch", "finally"]
    result = CliRunner().invoke(cli, ["retry", failed.failed_job_ids[0]])
    assert result.exit_code == 0, result.output
    again = handle.fresh()
    assert (again.failed_jobs, again.failed_job_ids, again.pending_jobs) == (0, [], 1)
    assert not again.finished()
    assert bus_app.driver().failed.count() == 0
    drain(bus_app)
    done = handle.fresh()
    assert done.finished() and done.pending_jobs == 0 and done.progress() == 100
    assert callbacks(project) == ["catch", "finally", "then"]  # finally does not fire twice


def _record(total: int, pending: int, failed: int = 0) -> Batch:
    from conveyor import current_app

    record = BatchRecord("b", "", total, pending, failed, False, {}, 0.0)
    return Batch(record, current_app(), "database")


@pytest.mark.parametrize(
    ("total", "pending", "processed", "progress"),
    [(3, 3, 0, 0), (3, 2, 1, 33), (3, 1, 2, 66), (3, 0, 3, 100), (200, 1, 199, 99), (0, 0, 0, 100)],
)
def test_progress_arithmetic(
    app: Conveyor, total: int, pending: int, processed: int, progress: int
) -> None:
    handle = _record(total, pending)
    assert handle.processed_jobs == processed
    assert handle.progress() == progress
