"""The wire envelope: what a driver stores for one job.

The policy (tries, backoff, timeout, retry_until, ...) is lifted out of the job body and resolved
at dispatch, so that a worker can decide to retry or fail a job whose process died without
decoding, importing or running any user code.
"""

from __future__ import annotations

import collections
import os
from typing import Annotated, Any

import msgspec

from .errors import PayloadError

DEFAULT_MAX_PAYLOAD = 1024 * 1024
#: how deep a payload may nest, all of it: a job's arguments may nest ``serialization.MAX_DEPTH``
#: (100) levels, and a chain link puts them four levels down, a batch a chain reaches six.
#: Python's own recursion limit is about 1,000 frames: a payload of 1,000 nested lists crashed
#: the decoder, and one a little shallower made the decode in the executor run out of stack.
MAX_DEPTH = 128
#: claims handed back by forced stops that are not counted as attempts (see ``attempts``): a
#: forged ``returned`` must not make ``tries`` unlimited
MAX_FORGIVEN_RETURNS = 10

# Bounds on what a payload may say: anyone who can write to the queue's storage can write any
# bytes, and a value out of these bounds makes the payload malformed (it fails with the reason)
# instead of switching a limit off (a negative count, an infinite timeout, an id of a megabyte).
_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
_Count = Annotated[int, msgspec.Meta(ge=0, le=2**31)]
_Seconds = Annotated[float, msgspec.Meta(ge=0, le=1e10)]
_Time = Annotated[float, msgspec.Meta(ge=0, le=1e11)]


class Envelope(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=False):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
    job: _Name
    args: dict[str, Any]
    queue: _Name = "default"
    connection: str | None = None
    tries: _Count | None = None
    #: seconds; 0 is the job's "no timeout", which a worker bounds by its ``max_timeout``
    timeout: _Seconds | None = None
    backoff: list[_Seconds] | None = None
    retry_until: _Time | None = None
    max_exceptions: _Count | None = None
    fail_on_timeout: bool = False
    #: ``handle`` is ``async def``, known at dispatch so that a worker can run several such
    #: jobs at once without importing the job's class in its control process
    async_handle: bool = False
    exceptions: _Count = 0
    #: claims handed back unfinished by a worker forced to stop; they do not count as attempts
    returned: _Count = 0
    dispatched_at: _Time = 0.0
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
        """Attempts that count against ``tries``: drivers count claims, some were given back
        (up to ``MAX_FORGIVEN_RETURNS``)."""
        return max(1, claims - min(self.returned, MAX_FORGIVEN_RETURNS))


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


def decode(payload: bytes, max_size: int | None = None) -> Envelope:
    """Decode a stored payload, turning every way it can be broken into one ``PayloadError``:
    bytes that are not an envelope, values out of bounds, nesting deeper than ``MAX_DEPTH``,
    and (with ``max_size``, a worker's ``max_payload``) more bytes than a worker will decode."""
    if max_size is not None and len(payload) > max_size:
        raise PayloadError(f"payload is over this worker's max_payload of {max_size} bytes")
    try:
        env = _decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise PayloadError(f"malformed job payload ({exc})", payload) from exc
    except RecursionError:
        raise PayloadError(_TOO_DEEP, payload) from None
    # JSON that decoded and nests deeper than MAX_DEPTH holds more than MAX_DEPTH opening
    # brackets and as many closing ones: a shorter payload (most jobs) costs one length test,
    # a longer one two counts (0.3 us), and only one with that many brackets pays for the walk
    if (
        len(payload) > 2 * MAX_DEPTH
        and payload.count(b"[") + payload.count(b"{") > MAX_DEPTH
        and _deeper_than(env, MAX_DEPTH)
    ):
        raise PayloadError(_TOO_DEEP, payload)
    return env


_TOO_DEEP = f"malformed job payload (nested deeper than {MAX_DEPTH} levels)"


def _deeper_than(env: Envelope, limit: int) -> bool:
    """Whether any value of ``env`` nests deeper than ``limit``, walked without recursion."""
    stack: list[tuple[Any, int]] = [(env.args, 2), (env.chain, 2), (env.chain_catch, 2)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return False


def peek_name(payload: bytes) -> str:
    """Best-effort job name for logs and tables, even from a payload that does not decode."""
    try:
        return decode(payload).job
    except PayloadError:
        return "<malformed>"
