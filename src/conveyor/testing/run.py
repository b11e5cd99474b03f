"""``run_job(job)``: one attempt of one job through the real executor, and what came of it.

The job is encoded as ``dispatch()`` encodes it and run by the executor a worker uses: decoding,
policy, middleware, ``handle()`` (sync or async), the retry decision and ``failed()``. Nothing
touches a queue: the executor only reports an ``Outcome``, which is what the assertions read,
so ``self.release(30)``, ``self.delete()`` and ``self.fail()`` are observed, not acted on
(Laravel's ``withFakeQueueInteractions``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..app import Conveyor
from ..dispatch import PendingDispatch
from ..envelope import Envelope
from ..job import Job
from ..worker.executor import Attempt, Executor, timeout_for
from ..worker.outcome import Kind, Outcome
from .describe import short_name


@dataclass(frozen=True)
class JobRun:
    """How one attempt ended; the ``assert_*`` methods raise ``AssertionError`` saying how it
    ended instead."""

    job_name: str
    job_id: str
    attempt: int
    outcome: Outcome
    #: what ``handle()`` raised (or the job failed with), if anything
    exception: BaseException | None

    @property
    def completed(self) -> bool:
        return self.outcome.kind is Kind.COMPLETED

    @property
    def released(self) -> bool:
        return self.outcome.kind is Kind.RELEASED

    @property
    def deleted(self) -> bool:
        return self.outcome.kind is Kind.DISCARDED

    @property
    def failed(self) -> bool:
        return self.outcome.kind is Kind.FAILED

    def ended(self) -> str:
        """``completed``, ``was released with a delay of 30s``, ``was deleted`` or ``failed: ...``:
        what a failure message says after "but it"."""
        kind = self.outcome.kind
        if kind is Kind.RELEASED:
            because = f" after {self.outcome.reason}" if self.outcome.reason else ""
            return f"was released with a delay of {self.outcome.delay:g}s{because}"
        if kind is Kind.FAILED:
            return f"failed: {self.outcome.reason}"
        if kind is Kind.DISCARDED:
            return "was deleted"
        return "completed" + (f" ({self.outcome.reason})" if self.outcome.reason else "")

    def _check(self, ok: bool, expected: str) -> None:
        if not ok:
            raise AssertionError(
                f"{short_name(self.job_name)} (attempt {self.attempt}) was expected to "
                f"{expected}, but it {self.ended()}"
            )

    def assert_completed(self) -> None:
        self._check(self.completed, "complete")

    def assert_released(self, delay: float | None = None) -> None:
        """Released (by ``self.release()``, or by an exception with tries left); with
        ``delay``, after that many seconds."""
        if delay is None:
            self._check(self.released, "be released")
        else:
            ok = self.released and abs(self.outcome.delay - delay) < 1e-6
            self._check(ok, f"be released with a delay of {delay:g}s")

    def assert_not_released(self) -> None:
        self._check(not self.released, "not be released")

    def assert_deleted(self) -> None:
        self._check(self.deleted, "be deleted")

    def assert_not_deleted(self) -> None:
        self._check(not self.deleted, "not be deleted")

    def assert_failed(self, with_: type[BaseException] | str | None = None) -> None:
        """Failed for good; ``with_``: an exception class it failed with, or text in its reason."""
        if with_ is None:
            self._check(self.failed, "fail")
        elif isinstance(with_, str):
            self._check(self.failed and with_ in self.outcome.reason, f"fail with {with_!r}")
        else:
            ok = self.failed and isinstance(self.exception, with_)
            self._check(ok, f"fail with {with_.__name__}")

    def assert_not_failed(self) -> None:
        self._check(not self.failed, "not fail")


def _prepare(
    job: Job | PendingDispatch, attempt: int, app: Conveyor | None
) -> tuple[Executor, Attempt, Envelope]:
    """The job encoded as ``dispatch()`` would store it, claimed for its ``attempt``-th run."""
    pending = job if isinstance(job, PendingDispatch) else PendingDispatch(job)
    if app is not None:
        pending.using(app)
    found, name, env, message = pending.message()
    return found.executor(), Attempt(env.id, env.queue, name, message.payload, attempt), env


def _run(executor: Executor, attempt: Attempt, env: Envelope, outcome: Outcome) -> JobRun:
    exception = executor.last_exception if outcome.kind is not Kind.COMPLETED else None
    return JobRun(env.job, attempt.id, attempt.attempts, outcome, exception)


def run_job(job: Job | PendingDispatch, *, attempt: int = 1, app: Conveyor | None = None) -> JobRun:
    """Run ``job`` once, as attempt number ``attempt``, through the executor of ``app`` (the
    current app by default): ``run_job(Charge(order_id=1)).assert_released(delay=30)``."""
    executor, claim, env = _prepare(job, attempt, app)
    return _run(executor, claim, env, executor.execute(claim))


async def run_job_async(
    job: Job | PendingDispatch, *, attempt: int = 1, app: Conveyor | None = None
) -> JobRun:
    """``run_job`` from a coroutine: the job runs on the running event loop, as a worker's
    ``--concurrency`` runs it, its timeout applied."""
    executor, claim, env = _prepare(job, attempt, app)
    outcome = await executor.execute_async(claim, timeout_for(env, executor.defaults))
    return _run(executor, claim, env, outcome)
