"""Job fields <-> JSON values.

Encoding happens at dispatch, field by field, so an error names the field that cannot travel.
Decoding converts the JSON back through the field annotations, so a payload whose values have the
wrong types is refused with a message naming the field instead of failing deep inside handle().
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from typing import Any

import msgspec

from .errors import PayloadError, SerializationError
from .job import Job

#: values that are their own JSON form: no conversion, no check (exact types, not subclasses)
_PLAIN = frozenset({str, int, bool, type(None)})
_field_names: weakref.WeakKeyDictionary[type, tuple[str, ...]] = weakref.WeakKeyDictionary()


def field_names(cls: type[Job]) -> tuple[str, ...]:
    """A job class's field names, looked up once per class rather than once per dispatch."""
    found = _field_names.get(cls)
    if found is None:
        found = _field_names[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return found


def encode_fields(job: Job) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in field_names(type(job)):
        value = getattr(job, name)
        kind = type(value)
        if kind in _PLAIN or (kind is float and math.isfinite(value)):
            out[name] = value
        else:
            out[name] = _encode_field(job, name, value)
    return out


def _encode_field(job: Job, name: str, value: Any) -> Any:
    try:
        return _finite(msgspec.to_builtins(value, str_keys=True))
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        raise SerializationError(
            type(job).job_name,
            name,
            f"{type(value).__qualname__} is not JSON-serializable ({exc}); pass an id, a path "
            "or plain values instead",
        ) from None
    except ValueError as exc:
        raise SerializationError(type(job).job_name, name, str(exc)) from None


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
