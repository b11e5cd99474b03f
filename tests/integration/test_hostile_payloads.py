"""Payloads written by someone who can write to the queue's storage, and exceptions no backend
stores as they are: a real worker on every backend ends each one completed or in the failed
store with a reason, never dies of one, runs the healthy jobs beside them once each, and
imports or calls nothing a payload names outside its app modules."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, set_app
from conveyor.drivers.base import Message
from conveyor.text import MAX_ERROR_CHARS
from tests.bus.conftest import configure

from .harness import Workers
from .jobs import HOSTILE_TEXTS, Noop, Raises, read_records

pytestmark = pytest.mark.slow

JOBS = "tests.integration.jobs"
#: importing this module leaves a file behind: a payload naming it must not import it
MARKER_MODULE = "tests.integration.import_marker"
MAX_PAYLOAD = 64 * 1024
CALLBACK = "conveyor.bus:RunCallback"


def _raw(job_id: str, job: str, args: dict[str, Any], **fields: Any) -> bytes:
    return json.dumps({"id": job_id, "job": job, "args": args, **fields}).encode()


def _nested(job_id: str, depth: int) -> bytes:
    inner = b"[" * depth + b"]" * depth
    return b'{"id":"%s","job":"%s:Noop","args":{"x":%s}}' % (job_id.encode(), JOBS.encode(), inner)


#: id -> (payload, what the failed record's text says)
FORGED: dict[str, tuple[bytes, str]] = {
    "deep-1000": (_nested("deep-1000", 1000), "nested deeper than"),
    "deep-970": (_nested("deep-970", 970), "nested deeper than"),
    "callback-click": (
        _raw("callback-click", CALLBACK, {"target": "click:echo", "event": "chain_catch"}),
        "not one of this worker's app modules",
    ),
    "callback-walk": (
        _raw("callback-walk", CALLBACK, {"target": f"{JOBS}:os.makedirs", "event": "chain_catch"}),
        "is not a function that its module",
    ),
    "main": (_raw("main", "__main__:main", {}), "unknown job '__main__:main'"),
    "unlisted": (_raw("unlisted", f"{MARKER_MODULE}:Anything", {}), "unknown job"),
    "negative-tries": (_raw("negative-tries", f"{JOBS}:Noop", {}, tries=-1), "tries"),
    "infinite-timeout": (_raw("infinite-timeout", f"{JOBS}:Noop", {}, timeout=1e999), "timeout"),
    "negative-count": (_raw("negative-count", f"{JOBS}:Noop", {}, exceptions=-5), "exceptions"),
    "long-name": (_raw("long-name", "x" * 5000, {}), "job"),
    "oversize": (
        _raw("oversize", f"{JOBS}:Noop", {"n": 1}, pad="x" * (4 * MAX_PAYLOAD)),
        "over this worker's max_payload",
    ),
    "no-timeout": (
        _raw("no-timeout", f"{JOBS}:SleepyOnce", {"seconds": 60}, timeout=0),
        "JobTimedOut",
    ),
    "returned": (
        _raw("returned", f"{JOBS}:Raises", {"kind": "nul"}, tries=2, returned=10**6),
        "ValueError: bad \\x00 byte",
    ),
}


@pytest.fixture(params=["sqlite", "postgres", "mysql", "redis"])
def hostile_app(project: Path, request: pytest.FixtureRequest) -> Iterator[Conveyor]:
    app = configure(project, request.param, request, MAX_PAYLOAD)
    previous = set_app(app)
    try:
        yield app
    finally:
        set_app(previous)
        app.close()


def _failed_text(app: Conveyor, job_id: str) -> str:
    record = app.driver().failed.get(job_id)
    assert record is not None, f"{job_id} is not in the failed store"
    return record.exception


def test_forged_payloads_fail_with_a_reason_and_the_worker_lives_on(
    hostile_app: Conveyor,
    project: Path,
    both_executors: Workers,
    conveyor_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    driver = hostile_app.driver()
    healthy: list[str] = []
    for job_id, (payload, _) in FORGED.items():
        healthy.append(Noop(n=len(healthy)).dispatch())
        driver.push(Message(job_id, "default", payload))
    healthy.append(Noop(n=len(healthy)).dispatch())

    worker = both_executors.start("--stop-when-empty", "--max-timeout", "1.5", "--lease", "2")
    assert worker.wait(90) == 0, worker.stderr()

    for job_id, (_, reason) in FORGED.items():
        assert reason in _failed_text(hostile_app, job_id), job_id
    assert "payload begins" in _failed_text(hostile_app, "deep-1000")
    done = [r["id"] for r in read_records(project, "done")]
    assert sorted(done) == sorted(healthy)
    runs = [r for r in read_records(project, "start") if r["id"] == "returned"]
    assert 2 <= len(runs) <= 12  # ten hand-backs forgiven at most
    assert not (project / "imported-marker").exists()
    stderr = worker.stderr()
    assert "Traceback" not in stderr and "[[[[" not in stderr
    assert driver.size("default").total == 0

    for command in (("failed",), ("failed", "--json"), ("retry", "all")):
        result = conveyor_cli(*command)
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert driver.size("default").total == len(FORGED)


@pytest.mark.parametrize("kind", sorted(HOSTILE_TEXTS))
def test_exception_texts_of_every_shape_reach_the_failed_store(
    hostile_app: Conveyor, project: Path, workers: Workers, kind: str
) -> None:
    failing = Raises(kind=kind).dispatch()
    after = Noop(n=1).dispatch()
    worker = workers.start("--stop-when-empty", "--concurrency", "1")
    assert worker.wait(30) == 0, worker.stderr()

    text = _failed_text(hostile_app, failing)
    assert HOSTILE_TEXTS[kind][1] in text
    assert len(text) <= MAX_ERROR_CHARS and "\x00" not in text
    assert [r["id"] for r in read_records(project, "done")] == [after]
