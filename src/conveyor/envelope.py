"""The wire envelope: what a driver stores for one job.

The policy (tries, backoff, timeout, retry_until, ...) is lifted out of the job body and resolved
at dispatch, so that a worker can decide to retry or fail a job whose process died without
decoding, importing or running any user code.
"""

from __future__ import annotations

import collections
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


#: random version 4 UUIDs, made 256 at a time from one read of the OS's random source
_ids: collections.deque[str] = collections.deque()
_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))
_IDS_PER_READ = 256
#: a forked child must never hand out the ids its parent has, or will, hand out
os.register_at_fork(after_in_child=_ids.clear)


def _more_ids() -> list[str]:
    raw = bytearray(os.urandom(16 * _IDS_PER_READ))
    raw[6::16] = raw[6::16].translate(_VERSION)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    digits = raw.hex()
    return [digits[i : i + 32] for i in range(0, len(digits), 32)]


def new_job_id() -> str:
    """A random (version 4) UUID as 32 hex digits.

    One ``os.urandom`` call per id is a system call per dispatch; reading 256 ids' worth at
    once and setting the version bits on all of them with two ``translate`` calls costs a
    quarter as much. ``deque.popleft`` is atomic, so threads never share an id.
    """
    while True:
        try:
            return _ids.popleft()
        except IndexError:
            _ids.extend(_more_ids())


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
