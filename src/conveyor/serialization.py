"""Job fields <-> JSON values.

Encoding happens at dispatch, field by field, so an error names the field that cannot travel.
Decoding converts the JSON back through the field annotations, so a payload whose values have the
wrong types is refused with a message naming the field instead of failing deep inside handle().
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
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
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None), float})
_SCALARS: dict[Any, frozenset[type]] = {
    int: frozenset({int}), str: frozenset({str}), bool: frozenset({bool}),
    float: frozenset({float, int}), type(None): frozenset({type(None)}),
}  # fmt: skip


#: a field: its name, its annotation (``Any``: no check) and the types whose values need no
#: conversion and no check, since they already fit it (plain tuples: the fastest to unpack)
_Field = tuple[str, Any, frozenset[type]]
_fields: weakref.WeakKeyDictionary[type, tuple[_Field, ...]] = weakref.WeakKeyDictionary()


def _fitting(annotation: Any) -> frozenset[type]:
    """The plain types whose values fit ``annotation`` as they are: ``int`` for ``int``,
    ``str`` and ``None`` for ``str | None``; none for a list, a date or a dataclass."""
    if annotation is Any:
        return _PLAIN
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        fits: frozenset[type] = frozenset()
        for arg in typing.get_args(annotation):
            fits |= _fitting(arg)
        return fits
    return _SCALARS.get(annotation, frozenset())


def fields_of(cls: type[Job]) -> tuple[_Field, ...]:
    """A job class's fields and what each takes, looked up once per class rather than once
    per dispatch. A class whose annotations cannot be resolved here is checked in the worker
    only, as before."""
    found = _fields.get(cls)
    if found is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:
            hints = {}
        found = _fields[cls] = tuple(
            (f.name, hints.get(f.name, Any), _fitting(hints.get(f.name, Any)))
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        )
    return found


def field_names(cls: type[Job]) -> tuple[str, ...]:
    return tuple(name for name, _, _ in fields_of(cls))


def encode_fields(job: Job) -> dict[str, Any]:
    """The job's fields as JSON values, each checked against its annotation as the worker will
    convert it, so that ``user_id="abc"`` for an ``int`` fails here and not in the worker.
    A plain value of a type its field takes (nearly every field, nearly always) costs one set
    lookup; any other is converted and checked."""
    out: dict[str, Any] = {}
    for name, annotation, fits in fields_of(type(job)):
        value = getattr(job, name)
        kind = type(value)
        if kind in fits and (kind is not float or math.isfinite(value)):
            out[name] = value
        else:
            out[name] = _checked_field(job, name, annotation, _encode_field(job, name, value))
    return out


def _checked_field(job: Job, name: str, annotation: Any, value: Any) -> Any:
    if annotation is Any:
        return value
    try:
        msgspec.convert(value, annotation, strict=False)
    except (msgspec.ValidationError, TypeError) as exc:
        raise SerializationError(
            type(job).job_name, name, f"{value!r} does not fit its type: {exc}"
        ) from None
    return value


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
