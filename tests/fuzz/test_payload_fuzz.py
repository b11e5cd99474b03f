"""Random and mutated payloads written straight into each backend's storage, drained by a real
worker: whatever the bytes, the control process lives on, every job ends completed or in the
failed store with a reason (or waits, released, in the queue), none vanishes, the healthy jobs
among them all run, and nothing outside the app modules is imported or called.

``make test`` runs a few examples per backend with a fixed seed; ``make fuzz`` runs many more
(``FUZZ_EXAMPLES``) with a fresh seed each time.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor import Conveyor, set_app
from conveyor.drivers.base import Message
from tests.bus.conftest import configure
from tests.integration.harness import Workers
from tests.integration.jobs import read_records

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
RANDOM_SEED = os.environ.get("FUZZ_RANDOM") == "1"
JOBS = "tests.integration.jobs"
MAX_PAYLOAD = 64 * 1024
#: importing it leaves a file behind (``tests/integration/import_marker.py``)
MARKER = "tests.integration.import_marker"

FIELDS = [
    "id", "job", "args", "queue", "connection", "tries", "timeout", "backoff", "retry_until",
    "max_exceptions", "fail_on_timeout", "async_handle", "exceptions", "returned",
    "dispatched_at", "chain", "chain_catch", "batch_id", "batch_callback", "v",
]  # fmt: skip
NAMES = [
    f"{JOBS}:Noop", f"{JOBS}:Nope", f"{JOBS}:os.system", f"{MARKER}:Anything", "__main__:main",
    "click:echo", "os:system", "builtins:eval", "conveyor.bus:RunCallback",
    "conveyor.bus:StartBatch", "conveyor.demo.jobs:SendWelcomeEmail", "", ":", "x" * 2000,
]  # fmt: skip
TARGETS = [
    "click:echo", "rich:print", "click:utils.os.makedirs", "__main__:main", "os:system",
    f"{JOBS}:os.makedirs", f"{MARKER}:run", "builtins:print", "tests.bus.jobs:os.remove",
]  # fmt: skip
EDGE_TEXT = ["", "\x00", "\ud800", "\udcff", "\u202e", "e\u0301", "\x1b]0;title\x07", "[/]", "ä"]
EDGE_NUMBERS = [0, -1, 1, 2**31, 2**63, -(2**63), 2**64, 10**30, 1e308, -1e308, 0.5, -0.0]

text = st.text(max_size=12) | st.sampled_from(EDGE_TEXT)
scalars = (
    st.none() | st.booleans() | st.sampled_from(EDGE_NUMBERS) | text
    | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
)  # fmt: skip
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)  # fmt: skip


@st.composite
def envelope_bytes(draw: st.DrawFn, job_id: str) -> bytes:
    """A Noop envelope, mutated: fields set to anything, dropped or added; forged names and
    callbacks; nesting; sizes; or bytes that are no envelope at all."""
    env: dict[str, Any] = {"id": job_id, "job": f"{JOBS}:Noop", "args": {"n": 1}}
    for _ in range(draw(st.integers(0, 4))):
        field = draw(st.sampled_from(FIELDS) | text)
        what = draw(st.sampled_from(["set", "drop", "name", "callback", "deep"]))
        if what == "set":
            env[field] = draw(values)
        elif what == "drop":
            env.pop(field, None)
        elif what == "name":
            env["job"] = draw(st.sampled_from(NAMES) | text)
        elif what == "callback":
            env["job"] = "conveyor.bus:RunCallback"
            event = draw(st.sampled_from(["then", "catch", "finally", "chain_catch"]) | text)
            env["args"] = {"target": draw(st.sampled_from(TARGETS) | text), "event": event}
        else:
            depth = draw(st.sampled_from([50, 127, 128, 129, 500, 970, 1000, 5000]))
            env["args"] = {"n": "[" * depth + "1" + "]" * depth}
    payload = json.dumps(env).encode()
    if "args" in env and isinstance(env["args"], dict) and isinstance(env["args"].get("n"), str):
        raw = env["args"]["n"]
        if raw.startswith("["):  # the nesting goes in as JSON, not as a string of brackets
            payload = payload.replace(json.dumps(raw).encode(), raw.encode())
    shape = draw(st.sampled_from(["envelope"] * 6 + ["truncated", "bytes", "oversize"]))
    if shape == "truncated":
        return payload[: draw(st.integers(0, max(0, len(payload) - 1)))]
    if shape == "bytes":
        return draw(st.binary(max_size=300))
    if shape == "oversize":
        return payload[:-1] + b', "pad": "' + b"x" * (MAX_PAYLOAD + 10) + b'"}'
    return payload


@pytest.fixture(params=["sqlite", "postgres", "mysql", "redis"])
def fuzz_project(
    project: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Path, pytest.FixtureRequest, str]]:
    yield project, request, str(request.param)


def _store(app: Conveyor, backend: str, job_id: str, payload: bytes) -> None:
    """Write ``payload`` as its backend's storage can hold it: Redis and SQLite keep any bytes
    (SQLite as a blob in the text column); PostgreSQL's and MariaDB's text columns hold valid
    UTF-8 only, and PostgreSQL's no NUL."""
    if backend == "sqlite":
        app.driver().size("default")  # creates the tables
        path = app.settings.connection().url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT INTO conveyor_jobs (id, queue, payload, attempts, available_at,"
                " created_at) VALUES (?, 'default', ?, 0, 0, 0)",
                (job_id, payload),
            )
        conn.close()
        return
    if backend in ("postgres", "mysql"):
        payload = payload.decode("utf-8", "replace").replace("\x00", "?").encode()
    app.driver().push(Message(job_id, "default", payload))


def _drain(project: Path, app: Conveyor, backend: str, payloads: list[bytes]) -> None:
    driver = app.driver()
    forged = {f"f{i}-{os.urandom(3).hex()}": p for i, p in enumerate(payloads)}
    healthy = []
    for job_id, payload in forged.items():
        _store(app, backend, job_id, payload)
        healthy_id = f"h-{job_id}"
        body = {"id": healthy_id, "job": f"{JOBS}:Noop", "args": {"n": 2}}
        driver.push(Message(healthy_id, "default", json.dumps(body).encode()))
        healthy.append(healthy_id)

    workers = Workers(project)
    try:
        worker = workers.start("--stop-when-empty", "--max-timeout", "2", "--lease", "3")
        assert worker.wait(120) == 0, worker.stderr()[-5000:]
    finally:
        workers.cleanup()

    done = {r["id"] for r in read_records(project, "done")}
    assert set(healthy) <= done, "a healthy job beside the forged ones did not run"
    unsettled = [i for i in forged if i not in done and driver.failed.get(i) is None]
    for job_id in forged:
        record = driver.failed.get(job_id)
        assert record is None or record.exception, f"{job_id} failed without a reason"
    size = driver.size("default")
    assert size.pending == 0 and size.reserved == 0, size
    assert len(unsettled) == size.delayed, f"vanished: {unsettled} ({size.delayed} delayed)"
    assert not (project / "imported-marker").exists(), "a payload made the worker import"


def test_forged_payloads_never_stop_a_worker_nor_vanish(
    fuzz_project: tuple[Path, pytest.FixtureRequest, str],
) -> None:
    project, request, backend = fuzz_project
    examples = 0

    @settings(
        max_examples=EXAMPLES, derandomize=not RANDOM_SEED, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(st.lists(envelope_bytes(job_id="forged"), min_size=4, max_size=12))
    def run(payloads: list[bytes]) -> None:
        nonlocal examples
        examples += 1
        folder = project / f"example-{examples}"
        folder.mkdir()
        previous = os.getcwd()
        os.chdir(folder)
        app = configure(folder, backend, request, MAX_PAYLOAD)
        previous_app = set_app(app)
        try:
            _drain(folder, app, backend, payloads)
        finally:
            set_app(previous_app)
            app.close()
            os.chdir(previous)

    run()
    assert examples == EXAMPLES
