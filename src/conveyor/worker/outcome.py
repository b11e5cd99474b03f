"""The closed set of ways one attempt can end, as the executor reports it to the control process."""

from __future__ import annotations

import enum

import msgspec


class Kind(enum.Enum):
    COMPLETED = "completed"
    RELEASED = "released"
    FAILED = "failed"
    DISCARDED = "discarded"


class Outcome(msgspec.Struct, frozen=True):
    kind: Kind
    delay: float = 0.0
    #: the new payload to store on release (e.g. an exception counted), or None to keep it
    payload: bytes | None = None
    #: for FAILED: the error with its traceback, as the failed store keeps it
    error: str = ""
    reason: str = ""
    duration: float = 0.0
    #: resident memory of the process that ran the job, for --memory
    rss: int = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Outcome)


def pack(outcome: Outcome) -> bytes:
    return _encoder.encode(outcome)


def unpack(data: bytes) -> Outcome:
    return _decoder.decode(data)
