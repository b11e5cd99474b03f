"""The envelope is the wire format: it must round-trip and refuse broken bytes with one error."""

from __future__ import annotations

import os
import uuid

import pytest

from conveyor.envelope import Envelope, decode, encode, new_job_id, peek_name
from conveyor.errors import PayloadError


def full_envelope() -> Envelope:
    return Envelope(
        id=new_job_id(), job="app.jobs:SendWelcomeEmail", args={"user_id": 7, "tags": ["a"]},
        queue="emails", connection="database", tries=3, timeout=12.5, backoff=[1.0, 2.0],
        retry_until=1_700_000_000.0, max_exceptions=2, fail_on_timeout=True, exceptions=1,
        dispatched_at=1_699_999_999.5, chain=[{"job": "x", "args": {}}], batch_id="b1",
    )  # fmt: skip


def test_round_trip_keeps_every_field() -> None:
    env = full_envelope()
    assert decode(encode(env)) == env


def test_minimal_envelope_round_trips_with_defaults() -> None:
    env = Envelope(id="1", job="m:J", args={})
    back = decode(encode(env))
    assert back == env
    assert (back.queue, back.tries, back.exceptions) == ("default", None, 0)


def test_defaults_are_left_out_of_the_wire_format() -> None:
    assert b"fail_on_timeout" not in encode(Envelope(id="1", job="m:J", args={}))


def test_unknown_fields_from_a_newer_version_are_ignored() -> None:
    env = decode(b'{"id":"1","job":"m:J","args":{},"from_the_future":1}')
    assert env.job == "m:J"


def test_exception_counter_increments_without_touching_the_rest() -> None:
    env = full_envelope()
    counted = env.with_exception_counted()
    assert counted.exceptions == env.exceptions + 1
    assert counted.args == env.args and counted.id == env.id


def test_job_ids_are_unique() -> None:
    assert len({new_job_id() for _ in range(1000)}) == 1000


def test_job_ids_are_version_4_uuids_in_hex() -> None:
    for _ in range(200):
        job_id = new_job_id()
        parsed = uuid.UUID(job_id)
        assert (parsed.hex, parsed.version, parsed.variant) == (job_id, 4, uuid.RFC_4122)


def test_a_forked_child_never_hands_out_its_parents_next_ids() -> None:
    """Ids are read ahead in batches: a child that kept the parent's batch would repeat ids."""
    new_job_id()  # the parent now holds ids it has not handed out yet
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.write(write, "".join(new_job_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        digits = pipe.read().decode()
    os.waitpid(pid, 0)
    child = {digits[i : i + 32] for i in range(0, len(digits), 32)}
    parent = {new_job_id() for _ in range(50)}
    assert len(child) == 50 and not child & parent


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[1, 2, 3]",
        b'{"job": "m:J", "args": {}}',
        b'{"id": "1", "job": 5, "args": {}}',
        b'{"id": "1", "job": "m:J", "args": []}',
        b'{"id": "1", "job": "m:J", "args": {}, "tries": "three"}',
    ],
)
def test_malformed_bytes_raise_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError) as info:
        decode(payload)
    assert "malformed job payload" in str(info.value)


def test_peek_name_never_raises() -> None:
    assert peek_name(encode(Envelope(id="1", job="m:J", args={}))) == "m:J"
    assert peek_name(b"garbage") == "<malformed>"
