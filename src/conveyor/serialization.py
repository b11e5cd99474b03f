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

#: how deep a job's arguments may nest: a worker refuses payloads nested deeper than
#: ``envelope.MAX_DEPTH``, which leaves room for a chain's or a batch's levels around these
MAX_DEPTH = 100
_TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels; pass an id or a path to the data instead"

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
        return _checked(msgspec.to_builtins(value, str_keys=True), 1)
    except RecursionError:
        raise SerializationError(type(job).job_name, name, _TOO_DEEP) from None
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        raise SerializationError(
            type(job).job_name,
            name,
            f"{type(value).__qualname__} is not JSON-serializable ({exc}); pass an id, a path "
            "or plain values instead",
        ) from None
    except ValueError as exc:
        raise SerializationError(type(job).job_name, name, str(exc)) from None


def _checked(value: Any, depth: int) -> Any:
    """Refuse NaN and infinities (JSON has no such numbers and would silently store null) and
    nesting deeper than ``MAX_DEPTH`` (``depth``: a field's value is at 1)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be stored as JSON; use None or a sentinel value")
    elif isinstance(value, list | dict):
        if depth > MAX_DEPTH:
            raise ValueError(_TOO_DEEP)
        for item in value.values() if isinstance(value, dict) else value:
            _checked(item, depth + 1)
    return value


def decode_fields(cls: type[Job], args: dict[str, Any]) -> Job:
    try:
        return msgspec.convert(args, cls, strict=False)
    except msgspec.ValidationError as exc:
        raise PayloadError(f"{cls.job_name}: arguments do not match its fields: {exc}") from None
    except TypeError as exc:
        raise PayloadError(f"{cls.job_name}: cannot build job from payload: {exc}") from None
    except RecursionError:
        raise PayloadError(f"{cls.job_name}: arguments nested too deeply") from None
