"""Dispatching: encode now, store once, return the job id.

Everything that can be wrong with a job is found here, at the call site: an argument that is
not JSON, a payload over the size limit, an unknown connection. The worker never sees them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import app as app_mod
from . import backoff as backoff_mod
from . import envelope as envelope_mod
from .drivers.base import Message
from .envelope import Envelope
from .errors import ConveyorError, PayloadTooLarge, SerializationError
from .events import JobQueued
from .job import Job, provide_pending_class
from .queues import check_queue_name
from .serialization import encode_fields
from .worker.executor import Attempt
from .worker.outcome import Kind, Outcome

if TYPE_CHECKING:
    from .app import Conveyor

When = float | int | timedelta | datetime


def delay_seconds(when: When | None) -> float:
    if when is None:
        return 0.0
    if isinstance(when, datetime):
        now = datetime.now(when.tzinfo) if when.tzinfo else datetime.now()
        return max(0.0, (when - now).total_seconds())
    if isinstance(when, timedelta):
        return max(0.0, when.total_seconds())
    if isinstance(when, int | float) and not isinstance(when, bool):
        return max(0.0, float(when))
    raise ConveyorError(f"delay must be seconds, a timedelta or a datetime, got {when!r}")


def _retry_until(job: Job) -> float | None:
    cls = type(job)
    raw = cls.retry_until
    value = raw(job) if callable(raw) else raw
    if value is None:
        return None
    if isinstance(value, timedelta):
        return time.time() + value.total_seconds()
    if isinstance(value, datetime):
        return value.timestamp()
    raise ConveyorError(
        f"{cls.job_name}.retry_until must be a datetime or timedelta, got {value!r}"
    )


def _backoff(job: Job) -> list[float] | None:
    raw = type(job).backoff
    value = raw(job) if callable(raw) else raw
    try:
        return backoff_mod.normalize(value)
    except ValueError as exc:
        raise ConveyorError(f"{type(job).job_name}.backoff: {exc}") from None


def build_envelope(
    job: Job, *, queue: str | None, connection: str, default_queue: str, max_payload: int
) -> tuple[Envelope, bytes]:
    """Resolve the policy (methods called now, as Laravel does for retryUntil) and encode."""
    cls = type(job)
    env = Envelope(
        id=envelope_mod.new_job_id(),
        job=cls.job_name,
        args=encode_fields(job),
        queue=check_queue_name(queue or cls.queue or default_queue),
        connection=connection,
        tries=cls.tries,
        timeout=cls.timeout,
        backoff=_backoff(job),
        retry_until=_retry_until(job),
        max_exceptions=cls.max_exceptions,
        fail_on_timeout=bool(cls.fail_on_timeout),
        async_handle=cls.async_handle,
        dispatched_at=time.time(),
    )
    try:
        payload = envelope_mod.encode(env)
    except UnicodeEncodeError as exc:
        raise SerializationError(
            cls.job_name, None, f"a string argument is not valid Unicode ({exc.reason})"
        ) from None
    if len(payload) > max_payload:
        raise PayloadTooLarge(
            cls.job_name, None,
            f"payload is {len(payload)} bytes, over the {max_payload}-byte limit (max_payload); "
            "store large data elsewhere and pass its id or path",
        )  # fmt: skip
    return env, payload


class PendingDispatch:
    """A job with its dispatch options; nothing is stored until ``dispatch()``."""

    def __init__(self, job: Job, app: Conveyor | None = None) -> None:
        self.job = job
        self._app = app
        self._queue: str | None = None
        self._connection: str | None = None
        self._delay = 0.0

    def delay(self, when: When) -> PendingDispatch:
        self._delay = delay_seconds(when)
        return self

    def on_queue(self, name: str) -> PendingDispatch:
        self._queue = check_queue_name(name)
        return self

    def on_connection(self, name: str) -> PendingDispatch:
        self._connection = name
        return self

    def using(self, app: Conveyor) -> PendingDispatch:
        self._app = app
        return self

    def _target(self) -> tuple[Conveyor, str]:
        app = self._app or app_mod.current_app()
        name = self._connection or type(self.job).connection or app.settings.default
        return app, name

    def resolve(self) -> tuple[Conveyor, str, str]:
        """The app, connection name and that connection's default queue."""
        app, name = self._target()
        return app, name, app.settings.connection(name).queue

    def message(
        self, job: Job | None = None, resolved: tuple[Conveyor, str, str] | None = None
    ) -> tuple[Conveyor, str, Envelope, Message]:
        """Encode this job, or ``job`` of the same class with these options and ``resolved``."""
        app, name, default_queue = resolved or self.resolve()
        env, payload = build_envelope(
            job or self.job, queue=self._queue, connection=name,
            default_queue=default_queue, max_payload=app.settings.max_payload,
        )  # fmt: skip
        return app, name, env, Message(env.id, env.queue, payload, self._delay)

    def dispatch(self) -> str:
        app, name, env, message = self.message()
        app.driver(name).push(message)
        if app.events.has_listeners():
            app.events.emit(JobQueued(name, env.queue, env.id, env.job, 0, delay=self._delay))
        return env.id


def _pending(item: Job | PendingDispatch) -> PendingDispatch:
    return item if isinstance(item, PendingDispatch) else PendingDispatch(item)


def dispatch(item: Job | PendingDispatch) -> str:
    return _pending(item).dispatch()


def dispatch_if(condition: object, item: Job | PendingDispatch) -> str | None:
    return dispatch(item) if condition else None


def dispatch_unless(condition: object, item: Job | PendingDispatch) -> str | None:
    return None if condition else dispatch(item)


def dispatch_many(items: Iterable[Job | PendingDispatch]) -> list[str]:
    """Encode every job first (all or nothing), then store each connection's jobs in one write."""
    grouped: dict[tuple[int, str], tuple[Conveyor, list[Message]]] = {}
    ids: list[str] = []
    #: a plain job's target depends on its class alone: resolved once per class, not per job
    targets: dict[type[Job], tuple[PendingDispatch, tuple[Conveyor, str, str]]] = {}
    for item in items:
        if isinstance(item, PendingDispatch):
            app, name, env, message = item.message()
        else:
            target = targets.get(type(item))
            if target is None:
                pending = PendingDispatch(item)
                target = targets[type(item)] = (pending, pending.resolve())
            app, name, env, message = target[0].message(item, target[1])
        grouped.setdefault((id(app), name), (app, []))[1].append(message)
        ids.append(env.id)
    for (_, name), (app, messages) in grouped.items():
        app.driver(name).push_many(messages)
    return ids


def dispatch_sync(item: Job | PendingDispatch) -> Outcome:
    """Run the job now in this process, through the same executor a worker uses.

    As in Laravel, an exception from the job propagates to the caller after ``failed()`` ran.
    """
    app, name, env, message = _pending(item).message()
    executor = app.executor()
    outcome = executor.execute(
        Attempt(env.id, env.queue, name, message.payload, 1), single_attempt=True
    )
    if outcome.kind is Kind.FAILED and executor.last_exception is not None:
        raise executor.last_exception
    return outcome


provide_pending_class(PendingDispatch)
