"""The closed set of ways one attempt can end, as the executor reports it to the control process."""

from __future__ import annotations

import enum

import msgspec

from ..text import storable


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
    """The outcome for the pipe; its texts made storable only if they cannot travel as they
    are (a lone surrogate), so the usual outcome costs nothing more."""
    try:
        return _encoder.encode(outcome)
    except UnicodeEncodeError:
        texts = {"error": storable(outcome.error), "reason": storable(outcome.reason)}
        return _encoder.encode(msgspec.structs.replace(outcome, **texts))


def unpack(data: bytes) -> Outcome:
    return _decoder.decode(data)
