"""Recorded messages back into jobs, and jobs into the short lines failure messages list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from ..envelope import Envelope
from ..errors import PayloadError, UnknownJobError
from ..job import Job
from ..registry import Registry
from ..serialization import decode_fields, field_names
from .recorder import Recorded

#: how many dispatched jobs a failure message lists before it says how many more there were
LISTED = 20


def job_of(env: Envelope, registry: Registry, cls: type[Job] | None = None) -> Job | None:
    """The job an envelope carries, decoded as a worker would (``cls`` when the caller knows
    it); None when no class of that name is known here."""
    try:
        return decode_fields(cls or registry.resolve(env.job), env.args)
    except (UnknownJobError, PayloadError):
        return None


def short_name(job_name: str) -> str:
    """``app.jobs:SendWelcomeEmail`` -> ``SendWelcomeEmail``."""
    return job_name.rpartition(":")[2].rpartition(".")[2]


def show_job(env: Envelope, registry: Registry) -> str:
    """``SendWelcomeEmail(user_id=2)``: the class's short name and its fields (as stored, if
    no class of that name is known here)."""
    job = job_of(env, registry)
    return show_fields(job) if job is not None else _show(env.job, env.args)


def show_fields(job: Job) -> str:
    return _show(type(job).job_name, {name: getattr(job, name) for name in field_names(type(job))})


def _show(job_name: str, values: dict[str, Any]) -> str:
    args = ", ".join(f"{name}={value!r}" for name, value in values.items())
    return f"{short_name(job_name)}({args})"


def show_record(item: Recorded, registry: Registry) -> str:
    """One dispatched job with where it went: ``X(a=1) on database/emails, delay 60s``."""
    text = f"{show_job(item.envelope, registry)} on {item.connection}/{item.queue}"
    if item.delay:
        text += f", delay {item.delay:g}s"
    if item.envelope.chain:
        text += (
            f", chained to {', '.join(show_link(link, registry) for link in item.envelope.chain)}"
        )
    if item.envelope.batch_id:
        text += f", in batch {item.envelope.batch_id}"
    return text


def show_link(link: dict[str, Any], registry: Registry) -> str:
    if "batch" in link:
        return f"batch({link['batch'].get('name') or link['batch'].get('id')!s})"
    return show_job(msgspec.convert(link["job"], Envelope), registry)


def show_records(items: Sequence[Recorded], registry: Registry) -> str:
    """``Dispatched: A(...) on c/q; B(...) on c/q`` or ``Nothing was dispatched.``"""
    if not items:
        return "Nothing was dispatched."
    shown = "; ".join(show_record(item, registry) for item in items[:LISTED])
    more = f"; and {len(items) - LISTED} more" if len(items) > LISTED else ""
    return f"Dispatched: {shown}{more}"


def show_where(where: Callable[..., Any] | None) -> str:
    if where is None:
        return ""
    return f" where {getattr(where, '__name__', None) or repr(where)}"
