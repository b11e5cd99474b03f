"""Chains on every backend: order, stop on failure with one catch, chains and batches nested."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conveyor import Conveyor, batch, chain

from .jobs import Step, on_chain_failed, on_then, read_records


def keys(project: Path) -> list[str]:
    return [r["key"] for r in read_records(project, "run")]


def test_links_run_in_order_each_once(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    first = chain([Step(key="a"), Step(key="b"), Step(key="c"), Step(key="d")]).dispatch()
    assert bus_app.driver().size("default").total == 1  # only the first link is stored
    drain(bus_app)
    runs = read_records(project, "run")
    assert [r["key"] for r in runs] == ["a", "b", "c", "d"]
    assert runs[0]["id"] == first
    assert len({r["id"] for r in runs}) == 4


def test_a_failed_link_stops_the_chain_and_catch_runs_once(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    links = [Step(key="a"), Step(key="b", boom=True), Step(key="c"), Step(key="d")]
    chain(links).catch(on_chain_failed).dispatch()
    drain(bus_app)
    assert keys(project) == ["a", "b"]
    caught = read_records(project, "chain_catch")
    assert len(caught) == 1
    assert caught[0]["error"] == "ValueError: b exploded"
    failed = bus_app.driver().failed.get(caught[0]["job"])
    assert failed is not None and "b exploded" in failed.exception


def test_on_queue_moves_every_link(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    chain([Step(key="a"), Step(key="b")]).on_queue("orders").dispatch()
    assert drain(bus_app, "default") == 0
    drain(bus_app, "orders")
    assert [r["queue"] for r in read_records(project, "run")] == ["orders", "orders"]


def test_a_link_may_be_a_batch(bus_app: Conveyor, project: Path, drain: Callable[..., int]) -> None:
    inner = batch([Step(key="b1"), Step(key="b2")]).then(on_then)
    chain([Step(key="a"), inner, Step(key="c")]).dispatch()
    drain(bus_app)
    order = keys(project)
    assert order[0] == "a" and order[-1] == "c"
    assert sorted(order[1:3]) == ["b1", "b2"]
    assert len(read_records(project, "then")) == 1


def test_a_cancelled_batch_link_stops_the_chain(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    inner = batch([Step(key="b1", boom=True), Step(key="b2")])
    chain([inner, Step(key="c")]).catch(on_chain_failed).dispatch()
    drain(bus_app)
    assert "c" not in keys(project)
    caught = read_records(project, "chain_catch")
    assert len(caught) == 1 and caught[0]["error"] == "ValueError: b1 exploded"


def test_a_batch_may_hold_chains(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    fan = batch([[Step(key="x1"), Step(key="x2"), Step(key="x3")], Step(key="y")]).then(on_then)
    handle = fan.dispatch()
    assert handle.total_jobs == 4
    drain(bus_app)
    order = keys(project)
    assert [k for k in order if k.startswith("x")] == ["x1", "x2", "x3"]
    assert [r["processed"] for r in read_records(project, "then")] == [4]


def test_a_failed_link_in_a_batch_counts_its_dropped_links_as_done(
    bus_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    fan = batch([[Step(key="x1", boom=True), Step(key="x2")], Step(key="y")]).allow_failures()
    handle = fan.dispatch()
    drain(bus_app)
    assert "x2" not in keys(project)
    done = handle.fresh()
    assert done.finished() and done.failed_jobs == 1
    assert done.pending_jobs == 1 and done.processed_jobs == 2
