"""Job fields <-> JSON values.

Encoding happens at dispatch, field by field, so an error names the field that cannot travel.
Decoding converts the JSON back through the field annotations, so a payload whose values have the
wrong types is refused with a message naming the field instead of failing deep inside handle().
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgspec

from .errors import PayloadError, SerializationError
from .job import Job


def encode_fields(job: Job) -> dict[str, Any]:
    name = type(job).job_name
    out: dict[str, Any] = {}
    for field in dataclasses.fields(job):  # type: ignore[arg-type]
        value = getattr(job, field.name)
        try:
            out[field.name] = _finite(msgspec.to_builtins(value, str_keys=True))
        except (TypeError, msgspec.EncodeError, OverflowError) as exc:
            raise SerializationError(
                name,
                field.name,
                f"{type(value).__qualname__} is not JSON-serializable ({exc}); pass an id, a path "
                "or plain values instead",
            ) from None
        except ValueError as exc:
            raise SerializationError(name, field.name, str(exc)) from None
    return out


def _finite(value: Any) -> Any:
    """Refuse NaN and infinities: JSON has no such numbers and would silently store null."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be stored as JSON; use None or a sentinel value")
    elif isinstance(value, list):
        for item in value:
            _finite(item)
    elif isinstance(value, dict):
        for item in value.values():
            _finite(item)
    return value


def decode_fields(cls: type[Job], args: dict[str, Any]) -> Job:
    try:
        return msgspec.convert(args, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise PayloadError(f"{cls.job_name}: arguments do not match its fields: {exc}") from None
    except TypeError as exc:
        raise PayloadError(f"{cls.job_name}: cannot build job from payload: {exc}") from None
