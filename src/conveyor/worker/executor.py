"""One reservation in, one ``Outcome`` out: decode, check policy, run the middleware onion, decide.

It runs where user code runs (the executor child, or in-process for ``dispatch_sync`` and the
``sync`` connection) and never talks to the queue's storage: the control process settles the
outcome. Nothing a job or its payload does can escape as an exception from ``execute``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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
from ..errors import JobTimedOut, MaxAttemptsExceeded, PayloadError
from ..events import (
    EventBus,
    JobExceptionOccurred,
    JobFailed,
    JobProcessed,
    JobProcessing,
    JobReleased,
)
from ..events import JobTimedOut as TimedOutEvent
from ..job import Job
from ..registry import Registry
from ..serialization import decode_fields
from ..text import describe, storable
from .outcome import Kind, Outcome

log = logging.getLogger("conveyor.worker")


@dataclass(frozen=True)
class WorkerDefaults:
    """What applies when a job does not say (Laravel's worker options), and the bounds a
    worker puts on what a payload says, whoever wrote it."""

    tries: int = 1
    backoff: list[float] | None = None
    timeout: float | None = 60.0
    #: the longest a job may run, whatever its payload says (0 or None in a payload, "no
    #: timeout", means this); None: unbounded
    max_timeout: float | None = 3600.0
    #: payloads over this many bytes fail unread (the producers' ``max_payload`` refuses them
    #: at dispatch; a payload written by other means may be any size)
    max_payload: int = envelope_mod.DEFAULT_MAX_PAYLOAD


@dataclass(frozen=True)
class _Begun:
    """An attempt past its checks, about to run (or having run) user code."""

    job: Job
    env: Envelope
    policy: retry.Policy
    ctx: JobContext
    meta: tuple[str, str, str, str, int]
    started: float


@dataclass(frozen=True)
class _Failure:
    """The attempt fails for good; the ``failed()`` hook still has to run."""

    exc: BaseException
    why: str = ""


@dataclass(frozen=True)
class Attempt:
    id: str
    queue: str
    connection: str
    payload: bytes
    attempts: int
    #: the job's batch was cancelled: it skips its work and counts as done (Laravel's
    #: ``SkipIfBatchCancelled``, applied to every batch job). The control process asks the batch
    #: store before handing the job over, so that the executor never opens a connection
    batch_cancelled: bool = False


def policy_for(env: Envelope, defaults: WorkerDefaults) -> retry.Policy:
    """The job's own settings win over the worker's, as in Laravel."""
    return retry.Policy(
        tries=env.tries if env.tries is not None else defaults.tries,
        backoff=env.backoff if env.backoff is not None else defaults.backoff,
        retry_until=env.retry_until,
        max_exceptions=env.max_exceptions,
        fail_on_timeout=env.fail_on_timeout,
        timeout=timeout_for(env, defaults),
    )


def timeout_for(env: Envelope | None, defaults: WorkerDefaults) -> float | None:
    """``policy_for(...).timeout`` alone: the control process needs it for every job it
    starts, and building the whole policy cost it a few microseconds each time. None or 0 in
    the envelope takes the worker's timeout and "no timeout" its ``max_timeout``; no job runs
    longer than that, whatever its payload says."""
    timeout = env.timeout if env is not None and env.timeout is not None else defaults.timeout
    cap = defaults.max_timeout
    if not timeout:
        return cap
    return timeout if cap is None or timeout <= cap else cap


def format_error(exc: BaseException) -> str:
    """The traceback as the failed store keeps it: storable, whatever the exception holds."""
    try:
        text = "".join(traceback.format_exception(exc)).rstrip()
    except Exception:
        text = describe(exc)
    return storable(text)


def payload_error(exc: PayloadError) -> Outcome:
    """A payload that cannot become a job fails: its first bytes go to the failed store with
    the error, never into the log line (``reason``)."""
    error = format_error(exc)
    if exc.preview:
        error += f"\npayload begins: {storable(exc.preview)!r}"
    return Outcome(Kind.FAILED, error=error, reason=storable(str(exc), 500))


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
        begun = self._begin(attempt)
        if isinstance(begun, Outcome):
            return begun
        try:
            self._run_pipeline(begun.job)
        except (Exception, SystemExit) as exc:  # sys.exit() in a job is its failure, not ours
            if single_attempt:
                return self._fail(begun, _Failure(exc, "the sync connection runs one attempt"))
            decided = self._after_exception(begun, exc)
        else:
            decided = self._after_return(begun)
        return self._fail(begun, decided) if isinstance(decided, _Failure) else decided

    async def execute_async(self, attempt: Attempt, timeout: float | None) -> Outcome:
        """Run one attempt on the running event loop, beside others (``--concurrency``).

        An ``async def handle`` is cancelled at ``timeout``; sync code blocks the loop and is
        left to the control process's hard timeout, as with ``execute``.
        """
        begun = self._begin(attempt)
        if isinstance(begun, Outcome):
            return begun
        try:
            async with asyncio.timeout(timeout) as limit:
                await self._run_pipeline_async(begun.job)
        except (Exception, SystemExit) as exc:
            if isinstance(exc, TimeoutError) and limit.expired():
                decided = self._after_timeout(begun, timeout or 0.0)
            else:
                decided = self._after_exception(begun, exc)
        else:
            decided = self._after_return(begun)
        if isinstance(decided, _Failure):
            hook_error = await self._call_failed_hook_async(begun.job, decided.exc)
            return self._failed(begun, decided, hook_error)
        return decided

    def _begin(self, attempt: Attempt) -> _Begun | Outcome:
        """Decode and check policy; an ``Outcome`` when the attempt ends before user code runs."""
        started = time.perf_counter()
        self.last_exception = None
        name = "<malformed>"
        try:
            env = envelope_mod.decode(attempt.payload, self.defaults.max_payload)
            name = env.job
            job = decode_fields(self.registry.resolve(env.job), env.args)
        except PayloadError as exc:
            self.last_exception = exc
            # every way into the failed store tells the listeners of JobFailed
            meta = (attempt.connection, attempt.queue, attempt.id, name, attempt.attempts)
            self.events.emit(JobFailed(*meta, exception=exc))
            return payload_error(exc)
        policy = policy_for(env, self.defaults)
        attempts = env.attempts(attempt.attempts)
        ctx = JobContext(attempt.id, attempts, attempt.queue, attempt.connection)
        ctx.batch_id = env.batch_id
        job._context = ctx
        if attempt.batch_cancelled:
            return Outcome(Kind.COMPLETED, reason="skipped: its batch was cancelled")
        meta = (attempt.connection, attempt.queue, attempt.id, env.job, attempts)
        begun = _Begun(job, env, policy, ctx, meta, started)
        exhausted = retry.exhausted_before_start(policy, attempts, time.time())
        if exhausted:
            return self._fail(begun, _Failure(MaxAttemptsExceeded(f"{env.job}: {exhausted}")))
        self.events.emit(JobProcessing(*meta))
        return begun

    def _after_return(self, begun: _Begun) -> Outcome | _Failure:
        ctx, meta, started = begun.ctx, begun.meta, begun.started
        if ctx.intent is Intent.RELEASE:
            self.events.emit(JobReleased(*meta, delay=ctx.release_delay))
            return Outcome(Kind.RELEASED, delay=ctx.release_delay, duration=_since(started))
        if ctx.intent is Intent.FAIL:
            return _Failure(ctx.fail_reason or RuntimeError("job marked as failed"))
        self.events.emit(JobProcessed(*meta, duration=_since(started)))
        if ctx.intent is Intent.DELETE:
            return Outcome(Kind.DISCARDED, reason="deleted by the job", duration=_since(started))
        return Outcome(Kind.COMPLETED, duration=_since(started))

    def _after_exception(self, begun: _Begun, exc: BaseException) -> Outcome | _Failure:
        env, policy, meta = begun.env, begun.policy, begun.meta
        self.events.emit(JobExceptionOccurred(*meta, exception=exc))
        decision = retry.after_error(policy, meta[4], env.exceptions + 1, time.time())
        if not decision.retry:
            return _Failure(exc, decision.reason)
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
            reason=describe(exc),
            duration=_since(begun.started),
        )

    def _after_timeout(self, begun: _Begun, timeout: float) -> Outcome | _Failure:
        """The same decision the control process makes when it kills a job at its timeout."""
        env, policy, meta = begun.env, begun.policy, begun.meta
        exc = JobTimedOut(f"job ran longer than its {timeout:g}s timeout")
        self.events.emit(TimedOutEvent(*meta, timeout=timeout))
        decision = retry.after_error(
            policy, meta[4], env.exceptions + 1, time.time(), timed_out=True
        )
        if not decision.retry:
            return _Failure(exc, decision.reason)
        self.last_exception = exc
        return Outcome(
            Kind.RELEASED,
            delay=decision.delay,
            payload=envelope_mod.encode(env.with_exception_counted()),
            reason=describe(exc),
            duration=_since(begun.started),
        )

    def _fail(self, begun: _Begun, failure: _Failure) -> Outcome:
        return self._failed(begun, failure, self.call_failed_hook(begun.job, failure.exc))

    def _failed(self, begun: _Begun, failure: _Failure, hook_error: str) -> Outcome:
        exc, why = failure.exc, failure.why
        self.last_exception = exc
        error = format_error(exc)
        if hook_error:
            error += f"\n\nfailed() hook raised:\n{hook_error}"
        self.events.emit(JobFailed(*begun.meta, exception=exc))
        reason = describe(exc) + (f" ({why})" if why else "")
        return Outcome(Kind.FAILED, error=error, reason=reason, duration=_since(begun.started))

    def call_failed_hook(self, job: Job, exc: BaseException) -> str:
        try:
            result: Any = job.failed(exc)
            if inspect.isawaitable(result):
                self._run_async(result)
        except Exception as hook_exc:
            log.exception("%s.failed() raised", type(job).__qualname__)
            return format_error(hook_exc)
        return ""

    async def _call_failed_hook_async(self, job: Job, exc: BaseException) -> str:
        try:
            result: Any = job.failed(exc)
            if inspect.isawaitable(result):
                await result
        except Exception as hook_exc:
            log.exception("%s.failed() raised", type(job).__qualname__)
            return format_error(hook_exc)
        return ""

    def _run_pipeline(self, job: Job) -> None:
        """The middleware onion: each ``handle(job, call_next)`` wraps the ones inside it.

        For an ``async def handle``, ``call_next`` returns its awaitable, which a middleware
        returns or awaits (``async def handle`` middleware); whatever comes out runs here to the
        end, so a job meets its middleware the same way in either executor.
        """
        result = _onion(job)(job)
        if inspect.isawaitable(result):
            self._run_async(_awaited(result))

    async def _run_pipeline_async(self, job: Job) -> None:
        """The same onion on a running loop, beside other jobs (``--concurrency``)."""
        await _awaited(_onion(job)(job))

    def _run_async(self, awaitable: Any) -> Any:
        if _loop_running():
            # a job dispatched as sync whose handle is async now (a deploy between dispatch and
            # run), inside the --concurrency child's loop: run it to the end on a loop of its own
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                return pool.submit(asyncio.run, _awaited(awaitable)).result()
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def failed_hook_for(self, attempt: Attempt, error: BaseException) -> str:
        """Call ``failed()`` for a job whose attempt died outside user code (timeout, crash)."""
        job = self._job_of(attempt)
        return job if isinstance(job, str) else self.call_failed_hook(job, error)

    async def failed_hook_for_async(self, attempt: Attempt, error: BaseException) -> str:
        job = self._job_of(attempt)
        return job if isinstance(job, str) else await self._call_failed_hook_async(job, error)

    def _job_of(self, attempt: Attempt) -> Job | str:
        """The job of an attempt, in its context, or why its payload cannot give one."""
        try:
            env = envelope_mod.decode(attempt.payload, self.defaults.max_payload)
            job = decode_fields(self.registry.resolve(env.job), env.args)
        except PayloadError as exc:
            return str(exc)
        attempts = env.attempts(attempt.attempts)
        job._context = JobContext(attempt.id, attempts, attempt.queue, attempt.connection)
        return job


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _awaited(result: Any) -> Any:
    """Await ``result``, and what it gives, until it is a plain value."""
    while inspect.isawaitable(result):
        result = await result
    return result


def _onion(job: Job) -> Callable[[Job], Any]:
    call: Callable[[Job], Any] = _call_handle
    for middleware in reversed(list(job.middleware())):
        call = _wrap(middleware, call)
    return call


def _call_handle(job: Job) -> Any:
    return job.handle()


def _wrap(middleware: Any, inner: Callable[[Job], Any]) -> Callable[[Job], Any]:
    def call(job: Job) -> Any:
        return middleware.handle(job, inner)

    return call


def _since(started: float) -> float:
    return time.perf_counter() - started
