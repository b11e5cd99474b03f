"""One reservation in, one ``Outcome`` out: decode, check policy, run the middleware onion, decide.

It runs where user code runs (the executor child, or in-process for ``dispatch_sync`` and the
``sync`` connection) and never talks to the queue's storage: the control process settles the
outcome. Nothing a job or its payload does can escape as an exception from ``execute``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import envelope as envelope_mod
from .. import retry
from ..context import Intent, JobContext
from ..envelope import Envelope
from ..errors import MaxAttemptsExceeded, PayloadError
from ..events import (
    EventBus,
    JobExceptionOccurred,
    JobFailed,
    JobProcessed,
    JobProcessing,
    JobReleased,
)
from ..job import Job
from ..registry import Registry
from ..serialization import decode_fields
from .outcome import Kind, Outcome

log = logging.getLogger("conveyor.worker")


@dataclass(frozen=True)
class WorkerDefaults:
    """What applies when a job does not say: Laravel's worker options."""

    tries: int = 1
    backoff: list[float] | None = None
    timeout: float | None = 60.0


@dataclass(frozen=True)
class Attempt:
    id: str
    queue: str
    connection: str
    payload: bytes
    attempts: int


def policy_for(env: Envelope, defaults: WorkerDefaults) -> retry.Policy:
    """The job's own settings win over the worker's, as in Laravel."""
    return retry.Policy(
        tries=env.tries if env.tries is not None else defaults.tries,
        backoff=env.backoff if env.backoff is not None else defaults.backoff,
        retry_until=env.retry_until,
        max_exceptions=env.max_exceptions,
        fail_on_timeout=env.fail_on_timeout,
        timeout=env.timeout if env.timeout is not None else defaults.timeout,
    )


def format_error(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


class Executor:
    def __init__(self, registry: Registry, events: EventBus, defaults: WorkerDefaults) -> None:
        self.registry = registry
        self.events = events
        self.defaults = defaults
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the last exception, for in-process callers (dispatch_sync re-raises it)
        self.last_exception: BaseException | None = None

    def execute(self, attempt: Attempt, *, single_attempt: bool = False) -> Outcome:
        """Run one attempt; ``single_attempt`` fails on any exception (sync connection)."""
        started = time.perf_counter()
        self.last_exception = None
        try:
            env = envelope_mod.decode(attempt.payload)
            job = decode_fields(self.registry.resolve(env.job), env.args)
        except PayloadError as exc:
            self.last_exception = exc
            return Outcome(Kind.FAILED, error=format_error(exc), reason=str(exc))
        policy = policy_for(env, self.defaults)
        attempts = env.attempts(attempt.attempts)
        ctx = JobContext(attempt.id, attempts, attempt.queue, attempt.connection)
        ctx.batch_id = env.batch_id
        job._context = ctx
        if _skipped_by_batch(env, attempt.connection):
            return Outcome(Kind.COMPLETED, reason="skipped: its batch was cancelled")
        meta = (attempt.connection, attempt.queue, attempt.id, env.job, attempts)
        exhausted = retry.exhausted_before_start(policy, attempts, time.time())
        if exhausted:
            return self._fail(job, meta, MaxAttemptsExceeded(f"{env.job}: {exhausted}"), started)
        self.events.emit(JobProcessing(*meta))
        try:
            self._run_pipeline(job)
        except (Exception, SystemExit) as exc:  # sys.exit() in a job is its failure, not ours
            if single_attempt:
                return self._fail(job, meta, exc, started, "the sync connection runs one attempt")
            return self._after_exception(job, env, policy, meta, exc, started)
        return self._after_return(job, ctx, meta, started)

    def _after_return(
        self, job: Job, ctx: JobContext, meta: tuple[str, str, str, str, int], started: float
    ) -> Outcome:
        if ctx.intent is Intent.RELEASE:
            self.events.emit(JobReleased(*meta, delay=ctx.release_delay))
            return Outcome(Kind.RELEASED, delay=ctx.release_delay, duration=_since(started))
        if ctx.intent is Intent.FAIL:
            reason = ctx.fail_reason or RuntimeError("job marked as failed")
            return self._fail(job, meta, reason, started)
        self.events.emit(JobProcessed(*meta, duration=_since(started)))
        if ctx.intent is Intent.DELETE:
            return Outcome(Kind.DISCARDED, reason="deleted by the job", duration=_since(started))
        return Outcome(Kind.COMPLETED, duration=_since(started))

    def _after_exception(
        self,
        job: Job,
        env: Envelope,
        policy: retry.Policy,
        meta: tuple[str, str, str, str, int],
        exc: BaseException,
        started: float,
    ) -> Outcome:
        self.events.emit(JobExceptionOccurred(*meta, exception=exc))
        decision = retry.after_error(policy, meta[4], env.exceptions + 1, time.time())
        if not decision.retry:
            return self._fail(job, meta, exc, started, decision.reason)
        self.last_exception = exc
        self.events.emit(JobReleased(*meta, delay=decision.delay))
        payload = None
        if policy.max_exceptions is not None:
            payload = envelope_mod.encode(env.with_exception_counted())
        return Outcome(
            Kind.RELEASED,
            delay=decision.delay,
            payload=payload,
            error=format_error(exc),
            reason=f"{type(exc).__name__}: {exc}",
            duration=_since(started),
        )

    def _fail(
        self,
        job: Job,
        meta: tuple[str, str, str, str, int],
        exc: BaseException,
        started: float,
        why: str = "",
    ) -> Outcome:
        self.last_exception = exc
        error = format_error(exc)
        hook_error = self.call_failed_hook(job, exc)
        if hook_error:
            error += f"\n\nfailed() hook raised:\n{hook_error}"
        self.events.emit(JobFailed(*meta, exception=exc))
        reason = f"{type(exc).__name__}: {exc}" + (f" ({why})" if why else "")
        return Outcome(Kind.FAILED, error=error, reason=reason, duration=_since(started))

    def call_failed_hook(self, job: Job, exc: BaseException) -> str:
        try:
            result: Any = job.failed(exc)
            if inspect.isawaitable(result):
                self._run_async(result)
        except Exception as hook_exc:
            log.exception("%s.failed() raised", type(job).__qualname__)
            return format_error(hook_exc)
        return ""

    def _run_pipeline(self, job: Job) -> None:
        """The middleware onion: each ``handle(job, call_next)`` wraps the ones inside it."""

        def core(j: Job) -> Any:
            result = j.handle()
            if inspect.isawaitable(result):
                return self._run_async(result)
            return result

        call: Callable[[Job], Any] = core
        for middleware in reversed(list(job.middleware())):
            call = _wrap(middleware, call)
        call(job)

    def _run_async(self, awaitable: Any) -> Any:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def failed_hook_for(self, attempt: Attempt, error: BaseException) -> str:
        """Call ``failed()`` for a job whose attempt died outside user code (timeout, crash)."""
        try:
            env = envelope_mod.decode(attempt.payload)
            job = decode_fields(self.registry.resolve(env.job), env.args)
        except PayloadError as exc:
            return str(exc)
        attempts = env.attempts(attempt.attempts)
        job._context = JobContext(attempt.id, attempts, attempt.queue, attempt.connection)
        return self.call_failed_hook(job, error)


def _skipped_by_batch(env: Envelope, connection: str) -> bool:
    """A job of a cancelled batch skips its work and counts as done (Laravel's
    ``SkipIfBatchCancelled``, applied to every batch job)."""
    if env.batch_id is None or env.batch_callback:
        return False
    from ..bus.settle import batch_cancelled

    return batch_cancelled(env.batch_id, connection)


def _wrap(middleware: Any, inner: Callable[[Job], Any]) -> Callable[[Job], Any]:
    def call(job: Job) -> Any:
        return middleware.handle(job, inner)

    return call


def _since(started: float) -> float:
    return time.perf_counter() - started
