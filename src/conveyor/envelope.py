"""The wire envelope: what a driver stores for one job.

The policy (tries, backoff, timeout, retry_until, ...) is lifted out of the job body and resolved
at dispatch, so that a worker can decide to retry or fail a job whose process died without
decoding, importing or running any user code.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from .errors import PayloadError

DEFAULT_MAX_PAYLOAD = 1024 * 1024


class Envelope(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    id: str
    job: str
    args: dict[str, Any]
    queue: str = "default"
    connection: str | None = None
    tries: int | None = None
    timeout: float | None = None
    backoff: list[float] | None = None
    retry_until: float | None = None
    max_exceptions: int | None = None
    fail_on_timeout: bool = False
    #: ``handle`` is ``async def``, known at dispatch so that a worker can run several such
    #: jobs at once without importing the job's class in its control process
    async_handle: bool = False
    exceptions: int = 0
    #: claims handed back unfinished by a worker forced to stop; they do not count as attempts
    returned: int = 0
    dispatched_at: float = 0.0
    chain: list[dict[str, Any]] | None = None
    #: the chain's catch callbacks, carried from link to link (conveyor.bus)
    chain_catch: list[dict[str, Any]] | None = None
    batch_id: str | None = None
    #: True for a job fired as a batch's then/catch/finally callback: it reaches the batch
    #: through ``batch_id`` but is not one of its jobs, so it is neither counted nor skipped
    batch_callback: bool = False
    v: int = 1

    def with_exception_counted(self) -> Envelope:
        return msgspec.structs.replace(self, exceptions=self.exceptions + 1)

    def with_claim_returned(self) -> Envelope:
        return msgspec.structs.replace(self, returned=self.returned + 1)

    def attempts(self, claims: int) -> int:
        """Attempts that count against ``tries``: drivers count claims, some were given back."""
        return max(1, claims - self.returned)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)


def new_job_id() -> str:
    """A random (version 4) UUID as 32 hex digits, without ``uuid.UUID``'s checks: a third of
    the cost, which counts on a bulk dispatch."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def encode(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode(payload: bytes) -> Envelope:
    """Decode a stored payload, turning every way it can be broken into one ``PayloadError``."""
    try:
        return _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        preview = payload[:120].decode("utf-8", "replace")
        raise PayloadError(f"malformed job payload ({exc}): {preview!r}") from exc


def peek_name(payload: bytes) -> str:
    """Best-effort job name for logs and tables, even from a payload that does not decode."""
    try:
        return decode(payload).job
    except PayloadError:
        return "<malformed>"
