"""What a payload may say, and what a job's exception may hold, is bounded before it can crash
a worker or switch one of its limits off."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor import Conveyor, Job, JobFailed
from conveyor.envelope import MAX_DEPTH, MAX_FORGIVEN_RETURNS, Envelope, decode, encode
from conveyor.errors import ConveyorError, PayloadError, SerializationError
from conveyor.serialization import MAX_DEPTH as MAX_ARGS_DEPTH
from conveyor.text import MAX_ERROR_CHARS, describe, loggable, storable
from conveyor.worker.executor import Attempt, WorkerDefaults, timeout_for
from conveyor.worker.outcome import Kind, Outcome, pack, unpack


class Deep(Job):
    value: Any

    def handle(self) -> None:
        pass


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _payload(**fields: Any) -> bytes:
    return json.dumps({"id": "j1", "job": "m:J", "args": {}, **fields}).encode()


def _deep(depth: int) -> bytes:
    return b'{"id":"d1","job":"m:J","args":{"x":' + b"[" * depth + b"]" * depth + b"}}"


@pytest.mark.parametrize("depth", [MAX_DEPTH, 500, 970, 1000, 100_000])
def test_nesting_past_the_bound_is_a_payload_error_not_a_crash(depth: int) -> None:
    with pytest.raises(PayloadError, match="nested deeper"):
        decode(_deep(depth))


def test_nesting_within_the_bound_decodes() -> None:
    assert decode(_deep(MAX_DEPTH - 4)).job == "m:J"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert decode(_payload(args={"s": "[" * 5000})).args == {"s": "[" * 5000}


def test_dispatch_refuses_arguments_deeper_than_its_bound(app: Conveyor) -> None:
    with pytest.raises(SerializationError, match="nested deeper"):
        Deep(value=_nested(MAX_ARGS_DEPTH + 1)).dispatch()
    with pytest.raises(SerializationError, match="nested deeper"):
        Deep(value=_nested(5000)).dispatch()


def test_what_dispatch_accepts_a_worker_decodes(app: Conveyor) -> None:
    """A chain link nests its job's arguments a few levels further down."""
    job_id = Deep(value=_nested(MAX_ARGS_DEPTH)).dispatch()
    reservation = app.driver().reserve(["default"], 30)
    assert reservation is not None and reservation.id == job_id
    env = decode(reservation.payload)
    link = {"id": "c", "job": "m:J", "args": {}, "chain": [{"job": {**json.loads(encode(env))}}]}
    decode(json.dumps(link).encode())


@pytest.mark.parametrize(
    "fields",
    [
        {"tries": -1},
        {"timeout": -1},
        {"timeout": 1e999},  # JSON's way to write infinity
        {"exceptions": -5},
        {"returned": -1},
        {"max_exceptions": -1},
        {"backoff": [1, -3]},
        {"retry_until": 1e999},
        {"job": ""},
        {"job": "x" * 5000},
        {"id": "i" * 1000},
        {"tries": 2**40},
    ],
)
def test_values_out_of_bounds_make_the_payload_malformed(fields: dict[str, Any]) -> None:
    with pytest.raises(PayloadError, match="malformed"):
        decode(_payload(**fields))


def test_a_payload_over_the_workers_size_is_refused_unread() -> None:
    payload = _payload(args={"pad": "x" * 2000})
    assert decode(payload).args["pad"] == "x" * 2000
    with pytest.raises(PayloadError, match="over this worker's max_payload of 1000"):
        decode(payload, max_size=1000)


def test_a_forged_returned_count_forgives_only_so_many_claims() -> None:
    env = Envelope(id="j", job="m:J", args={}, returned=10**6)
    assert env.attempts(1) == 1
    assert env.attempts(MAX_FORGIVEN_RETURNS + 3) == 3


@pytest.mark.parametrize(
    ("job_timeout", "worker", "cap", "expected"),
    [
        (None, 60.0, 3600.0, 60.0),
        (0.0, 60.0, 3600.0, 3600.0),  # the job's "no timeout" is the worker's bound
        (10**9, 60.0, 3600.0, 3600.0),
        (5.0, 60.0, 3600.0, 5.0),
        (None, None, 3600.0, 3600.0),
        (0.0, None, None, None),  # --max-timeout 0: unbounded, as the operator chose
    ],
)
def test_a_job_runs_no_longer_than_the_workers_maximum(
    job_timeout: float | None, worker: float | None, cap: float | None, expected: float | None
) -> None:
    env = Envelope(id="j", job="m:J", args={}, timeout=job_timeout)
    assert timeout_for(env, WorkerDefaults(timeout=worker, max_timeout=cap)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("bad \x00 byte", "bad \\x00 byte"),
        (b"r-\xff".decode("utf-8", "surrogateescape"), "r-\\udcff"),
    ],
)
def test_storable_text_is_valid_utf8_without_nul(text: str, expected: str) -> None:
    assert storable(text) == expected
    assert storable(storable(text)) == storable(text)


def test_storable_text_keeps_the_head_and_tail_of_a_huge_text() -> None:
    text = "HEAD" + "x" * 1_000_000 + "TAIL"
    kept = storable(text)
    assert len(kept) <= MAX_ERROR_CHARS and kept.startswith("HEAD") and kept.endswith("TAIL")
    assert "characters cut" in kept and storable(kept) == kept


def test_describe_survives_an_exception_whose_str_raises() -> None:
    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert describe(Broken()).startswith("Broken: <str() of the exception raised RuntimeError")


def test_an_outcome_with_a_lone_surrogate_still_travels() -> None:
    surrogate = b"\xff".decode("utf-8", "surrogateescape")
    outcome = Outcome(Kind.FAILED, error=f"e{surrogate}", reason=f"r{surrogate}")
    back = unpack(pack(outcome))
    assert (back.error, back.reason) == ("e\\udcff", "r\\udcff")


def test_log_lines_get_no_control_characters() -> None:
    assert loggable("job:Name") == "job:Name"
    assert loggable("a\nforged line\x1b]0;title\x07") == "a\\nforged line\\x1b]0;title\\x07"
    assert len(loggable("y" * 10_000)) <= 303


@pytest.mark.parametrize(
    "policy", [{"tries": -1}, {"tries": 1.5}, {"timeout": -1}, {"timeout": float("nan")}]
)
def test_a_job_class_with_a_policy_a_worker_would_refuse_is_refused(
    policy: dict[str, Any],
) -> None:
    with pytest.raises(ConveyorError):
        type("Bad", (Job,), {"handle": lambda self: None, **policy})


def test_an_exception_with_every_hostile_text_fails_the_job_with_it(app: Conveyor) -> None:
    surrogate = b"\xff".decode("utf-8", "surrogateescape")

    class Raises(Job):
        def handle(self) -> None:
            raise ValueError(f"nul \x00 surrogate {surrogate} " + "z" * 200_000)

    env = Envelope(id="j", job=Raises.job_name, args={})
    outcome = app.executor().execute(Attempt("j", "default", "database", encode(env), 1))
    assert outcome.kind is Kind.FAILED
    assert "nul \\x00 surrogate \\udcff" in outcome.error and len(outcome.error) <= MAX_ERROR_CHARS
    unpack(pack(outcome))


class Counted(Job):
    n: int

    def handle(self) -> None:
        pass


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (b"{not json", "<malformed>"),
        (_payload(job="nowhere:Missing"), "nowhere:Missing"),
        (_payload(job=Counted.job_name, args={"n": "many"}), Counted.job_name),
    ],
)
def test_a_payload_that_cannot_become_a_job_fires_job_failed(
    app: Conveyor, payload: bytes, name: str
) -> None:
    failed: list[JobFailed] = []
    app.events.listen(JobFailed, failed.append)
    outcome = app.executor().execute(Attempt("p1", "default", "database", payload, 1))
    assert outcome.kind is Kind.FAILED
    assert [(e.job_id, e.job_name) for e in failed] == [("p1", name)]
    assert isinstance(failed[0].exception, PayloadError)
