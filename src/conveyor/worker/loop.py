"""The worker loop: reserve, run through the executor, then acknowledge, release or fail.

The control process never runs user code. It owns the reservation: it renews the lease while
the job runs, settles the outcome with writes fenced by the reservation's token, and keeps going
through a broken connection to the queue's server by retrying with capped backoff.

While a job runs it prefetches the next few (``--prefetch``, on a backend with
``drivers.base.Prefetch``; sixteen on Redis and PostgreSQL, one on SQLite and MySQL): claims
whose attempt is counted only when the job starts, so one that never starts costs nothing. The
prefetched jobs wait queued in the executor, which goes straight on from one to the next; one
round trip then acknowledges the finished jobs, counts the start of the running one and tops
the queue up. While the executor still has half of them queued, the acknowledgements may wait
for a later round trip, so that one serves several jobs. If the running job turns out long, or the
worker is told to stop, the queued jobs are recalled and handed back, unless the executor has
already started them.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from .. import envelope as envelope_mod
from .. import retry
from ..bus.settle import batch_cancelled, bus_settlement
from ..drivers.base import (
    Driver,
    FailedRecord,
    Prefetch,
    Reservation,
    WorkerInfo,
)
from ..envelope import Envelope
from ..errors import ConnectionUnavailable, PayloadError
from ..events import EventBus, JobFailed, JobTimedOut, WorkerLooping, WorkerStopping
from ..text import describe, loggable
from .executor import Attempt, WorkerDefaults, payload_error, policy_for, timeout_for
from .outcome import Kind, Outcome
from .process import InlineRunner, Interrupted
from .runner import Runner, SerialRunner
from .signals import StopSignals, drain

log = logging.getLogger("conveyor.worker")
T = TypeVar("T")
R = TypeVar("R", bound=Runner)

#: how long a prefetched job waits for the running one to end before it goes back to the queue
#: for other workers: prefetching pays off for short jobs only, and must not keep a job waiting
#: behind a long one (after a job this long, the worker does not prefetch for the next)
PREFETCH_HOLD = 0.05


@dataclass(frozen=True)
class Running:
    reservation: Reservation
    attempt: Attempt
    started: float
    #: the decoded envelope, or None when the payload is malformed (the executor reports it)
    envelope: Envelope | None


@dataclass(frozen=True)
class WorkerOptions:
    queues: tuple[str, ...] = ("default",)
    once: bool = False
    stop_when_empty: bool = False
    sleep: float = 3.0
    max_jobs: int = 0
    max_time: float = 0.0
    lease: float = 30.0
    heartbeat_every: float = 5.0
    restart_check_every: float = 1.0
    #: see ``PREFETCH_HOLD``; 0 turns prefetching off
    prefetch_hold: float = PREFETCH_HOLD
    #: jobs claimed ahead; None: the backend's ``prefetch_depth``; 0 turns prefetching off
    prefetch: int | None = None


class WorkerLoop(Generic[R]):
    """What the loops share: claims, prefetches, settlements, leases and heartbeats; the
    subclass hands jobs to its runner ``R`` and waits for them."""

    def __init__(
        self,
        driver: Driver,
        runner: R,
        events: EventBus,
        defaults: WorkerDefaults,
        options: WorkerOptions,
    ) -> None:
        self.driver, self.runner, self.events = driver, runner, events
        self.defaults, self.options = defaults, options
        self.signals = StopSignals()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.started_at = time.time()
        self.processed = 0
        self.started = 0
        self._restart_mark: float | None = None
        self._stop_because: str | None = None
        self._next_beat = 0.0
        self._next_restart_check = 0.0
        self._current: str | None = None
        #: the next jobs, claimed while one runs but not yet started (see ``_prefetch``)
        self._held: deque[Reservation] = deque()
        self._held_since = 0.0
        #: finished jobs whose acknowledgement waits for the next round trip, and the running
        #: job if its start is yet to be counted (see ``_advance``)
        self._unacked: list[Reservation] = []
        self._unbegun: Reservation | None = None
        #: whether the last job was short enough for prefetching to pay off
        self._short = True
        self._prefetches = (
            isinstance(driver, Prefetch)
            and not isinstance(runner, InlineRunner)
            and options.prefetch_hold > 0
        )
        #: jobs claimed ahead of the running one (``--prefetch``)
        self._depth = 0
        self._keep_acks = False
        if self._prefetches:
            depth = options.prefetch
            self._depth = cast(Prefetch, driver).prefetch_depth if depth is None else depth
            self._prefetches = self._depth > 0
            self._keep_acks = cast(Prefetch, driver).keep_acks

    def _shut_down(self, reason: str) -> None:
        """On the way out, whatever ended the loop: nothing held, nothing kept unsent."""
        self.signals.uninstall()
        self.runner.stop()
        self._hand_back_held()
        self._quietly(self._flush_deferred)  # a forced stop must not end in a traceback
        self._quietly(lambda: self.driver.forget_worker(self.id))
        self.events.emit(WorkerStopping(self.driver.connection, 0, reason))
        log.info("worker %s stopping: %s (%d jobs)", self.id, reason, self.processed)

    def _stop_reason(self) -> str | None:
        """Why the worker should stop; once found, the reason sticks until the worker exits."""
        if self._stop_because is None:
            self._stop_because = self._check_stop()
        return self._stop_because

    def _check_stop(self) -> str | None:
        opts = self.options
        if self.signals.stopping:
            return f"received {self.signals.received}"
        if opts.max_jobs and self.started >= opts.max_jobs:
            return f"--max-jobs {opts.max_jobs} reached"
        if opts.max_time and time.time() - self.started_at >= opts.max_time:
            return f"--max-time {opts.max_time:g}s reached"
        now = time.monotonic()
        self._beat(now)
        if now >= self._next_restart_check:
            self._next_restart_check = now + opts.restart_check_every
            requested = self._quietly(self.driver.restart_requested_at)
            if requested is not None and requested != self._restart_mark:
                return "restart requested"
        return None

    def _reserve(self, wait: float | None = None) -> Reservation | None:
        if wait is None:
            wait = 0.0 if self.options.stop_when_empty else min(self.options.sleep, 1.0)
        try:
            return self._persist(
                lambda: self.driver.reserve(self.options.queues, self.options.lease, wait),
                stop_gives_up=True,
            )
        except ConnectionUnavailable:
            return None  # told to stop while the server is away: nothing was claimed

    def _attempt(self, reservation: Reservation, batch_cancelled: bool = False) -> Attempt:
        payload = reservation.payload
        limit = self.defaults.max_payload
        if len(payload) > limit:  # the executor fails it unread: it need not get it all
            payload = payload[: limit + 1]
        return Attempt(
            reservation.id, reservation.queue, self.driver.connection,
            payload, reservation.attempts, batch_cancelled,
        )  # fmt: skip

    def _running(self, reservation: Reservation, env: Envelope | None = None) -> Running:
        """Count a claimed job as started and decode what the control process needs of it
        (unless already decoded: ``env``)."""
        self.started += 1
        self._current = reservation.id
        if env is None:
            env = envelope_of(reservation, self.defaults.max_payload)
        attempt = self._attempt(reservation, batch_cancelled(self.driver, env))
        return Running(reservation, attempt, time.perf_counter(), env)

    def _ended(self, reservation: Reservation, outcome: Outcome) -> None:
        """A job ended before the round trip that was to count its start: a job simply
        acknowledged needs no count; any other outcome counts it now, before it is settled."""
        if self._unbegun is not reservation:
            return
        plain = outcome.kind in (Kind.COMPLETED, Kind.DISCARDED)
        if plain and bus_settlement(self.driver, reservation, outcome) is None:
            self._unbegun = None
        else:
            self._flush_deferred()

    def _begin(self, held: Reservation) -> Reservation:
        """A prefetched job starts: its attempt is counted at the next round trip. One job at
        a time waits for that: another still running uncounted (an async job, beside which
        this one starts) is counted first."""
        if self._unbegun is not None:
            self._flush_deferred()
        self._unbegun = held
        return held

    def _defer(self, reservation: Reservation, outcome: Outcome, ready: bool = False) -> bool:
        """Keep a plain acknowledgement for a later round trip, so that one serves several
        jobs, while the executor still has half of ``--prefetch`` queued: always on a backend
        whose round trip is short (``keep_acks``), else only when the executor has already
        finished the next job too (``ready``, or its outcome waits in the pipe). Once the
        queue runs low the round trip goes at once, so the top-up arrives before the executor
        runs dry; and what is kept goes out whenever a wait for the executor ends without an
        outcome (a job runs long), so an acknowledgement never waits behind a long job."""
        if outcome.kind not in (Kind.COMPLETED, Kind.DISCARDED):
            return False
        if len(self._held) < max(1, self._depth // 2):
            return False
        if not (self._keep_acks or ready or self.runner.outcome_ready()):
            return False
        if bus_settlement(self.driver, reservation, outcome) is not None:
            return False
        self._unacked.append(reservation)
        return True

    def _wanted(self, starting: int = 0) -> int:
        """How many jobs to prefetch now to keep ``--prefetch`` queued, besides ``starting``
        jobs claimed to start at once."""
        if not self._may_prefetch():
            return 0
        n = self._depth - len(self._held)
        if self.options.max_jobs:
            n = min(n, self.options.max_jobs - self.started - starting - len(self._held))
        return max(n, 0)

    def _may_prefetch(self) -> bool:
        opts = self.options
        if not (self._prefetches and self._short) or opts.once or self._stop_reason():
            return False
        return not (opts.max_jobs and self.started >= opts.max_jobs)

    def _prefetch(self) -> None:
        """Claim the next jobs while this one runs, without counting their attempts (the
        backend counts each when it starts): a claim that never starts, because the worker
        stops or dies, goes back having cost nothing."""
        n = self._wanted() if not self._held else 0
        if n:
            driver = cast(Prefetch, self.driver)
            queues, lease = self.options.queues, self.options.lease
            claimed = self._quietly(lambda: driver.ack_many_and_claim([], None, queues, lease, n))
            self._hold(claimed[1] if claimed else [])

    def _hold(self, reservations: list[Reservation]) -> None:
        """Keep prefetched jobs, queued in the executor behind the running one (in one write
        to its pipe)."""
        if not reservations:
            return
        if not self._held:
            self._held_since = time.monotonic()
        for reservation in reservations:
            self._queue(reservation, len(self._held))
            self._held.append(reservation)
        self._send_queued()

    def _queue(self, reservation: Reservation, behind: int) -> None:
        """Queue a prefetched job in the runner behind the running one; each loop knows how."""
        raise NotImplementedError

    def _send_queued(self) -> None:
        self.runner.send_queued()

    def _held_too_long(self, now: float) -> bool:
        """The running job is long: the prefetched ones should go to another worker."""
        return bool(self._held) and now - self._held_since >= self.options.prefetch_hold

    def _hand_back_held(self) -> None:
        """Give the prefetched jobs back uncounted, except those the executor has already
        started (the running job just ended): they stay held, and start in turn."""
        if not self._held:
            return
        started = self.runner.recall()
        kept = [r for r in self._held if r.id in started]
        for held in self._held:
            if held.id not in started:
                self._quietly(lambda held=held: held.release(0))  # type: ignore[misc]
        self._held = deque(kept)

    def _advance(
        self, reservation: Reservation, outcome: Outcome, n: int, count: bool = False
    ) -> list[Reservation]:
        """Settle a finished job, with the acknowledgements deferred before it, count the start
        of the running prefetched job, and claim up to ``n`` jobs (with ``count`` the first
        starts now, the others are prefetches): all in one round trip when the job is simply
        acknowledged."""
        bus_write = bus_settlement(self.driver, reservation, outcome)
        plain_ack = bus_write is None and outcome.kind in (Kind.COMPLETED, Kind.DISCARDED)
        alone = count and n <= 1 and not self._unacked and self._unbegun is None
        if not self._prefetches or alone:
            claimed = self._settle_and_claim(reservation, outcome, n > 0)
            return [claimed] if claimed is not None else []
        if plain_ack:
            self._unacked.append(reservation)
        else:
            if self._unbegun is not None and not count:
                # the running job's start is counted first: until then a SIGKILL of this
                # process would send it back uncounted, and this settlement is a round trip of
                # its own (the claims are held before it, so a stop during it hands them back)
                self._hold(self._flush_deferred(n))
                n = 0
            self._settle(reservation, outcome, bus_write)
        return self._flush_deferred(n, count)

    def _flush_deferred(
        self, n: int = 0, count: bool = False, persist: bool = True
    ) -> list[Reservation]:
        """Send the deferred acknowledgements and start, claiming up to ``n`` jobs too.

        Without ``persist`` it is tried once, as a lease renewal is, and what fails stays kept
        for the next round trip: so it is sent while a job runs long, between the waits that
        watch the job's deadline, which must not stall on a server that is down."""
        done, begin = self._unacked, self._unbegun
        self._unacked, self._unbegun = [], None
        if not (done or begin or n):
            return []
        driver = cast(Prefetch, self.driver)
        queues, lease = self.options.queues, self.options.lease

        def send() -> tuple[list[bool], list[Reservation]]:
            return driver.ack_many_and_claim(done, begin, queues, lease, n, count)

        try:
            acked, claimed = self._persist(send) if persist else send()
        except ConnectionUnavailable:
            self._unacked, self._unbegun = done, begin
            if persist:
                raise
            log.debug("sending %d kept acknowledgement(s) failed; kept for later", len(done))
            return []
        for reservation, ok in zip(done, acked, strict=True):
            if not ok:
                log.warning("job %s: lease was lost before settling", reservation.id)
        return claimed

    def _settle_and_claim(
        self, reservation: Reservation, outcome: Outcome, want_next: bool
    ) -> Reservation | None:
        """Settle a job and, if ``want_next``, claim the next one: a plain acknowledgement and
        the claim share one round trip where the backend can do them together."""
        bus_write = bus_settlement(self.driver, reservation, outcome)
        plain_ack = bus_write is None and outcome.kind in (Kind.COMPLETED, Kind.DISCARDED)
        # a chained or batched job settles through the bus, which may claim the next job too
        combined = getattr(
            bus_write if bus_write is not None else reservation, "ack_and_reserve", None
        )
        if want_next and (plain_ack or bus_write is not None) and combined is not None:
            acked, claimed = self._persist(
                lambda: combined(self.options.queues, self.options.lease)
            )
            if not acked:
                log.warning("job %s: lease was lost before settling", reservation.id)
            return claimed  # type: ignore[no-any-return]
        claimed = self._reserve(wait=0.0) if want_next else None
        self._settle(reservation, outcome, bus_write)
        return claimed

    def _log(self, running: Running, outcome: Outcome) -> None:
        self.processed += 1
        if self._current == running.reservation.id:
            self._current = None
        attempt, env = running.attempt, running.envelope
        log.info(
            "%s %s queue=%s attempt=%d %s %.1fms%s",
            loggable(env.job) if env else "<malformed>", attempt.id, attempt.queue,
            env.attempts(attempt.attempts) if env else attempt.attempts, outcome.kind.value.upper(),
            (time.perf_counter() - running.started) * 1000,
            f" ({loggable(outcome.reason)})" if outcome.reason else "",
        )  # fmt: skip

    def _timeout_of(self, env: Envelope | None) -> float | None:
        return timeout_for(env, self.defaults)

    def _renew_every(self) -> float:
        """Renew three times per lease, so one slow renewal never lets the lease run out."""
        return max(self.options.lease / 3, 0.05)

    def _renew(self, reservation: Reservation) -> None:
        if self._quietly(lambda: reservation.extend(self.options.lease)) is False:
            log.warning("lost the lease on job %s: another worker may run it", reservation.id)

    def _interrupted(self, attempt: Attempt, stop: Interrupted) -> Outcome:
        """Decide for an attempt whose process was killed or died, from the envelope alone."""
        error_text = describe(stop.error)
        try:
            env = envelope_mod.decode(attempt.payload, self.defaults.max_payload)
        except PayloadError as exc:
            return payload_error(exc)
        if self.signals.aborting:
            return handed_back(env, "worker stopped; released")
        attempts = env.attempts(attempt.attempts)
        meta = (attempt.connection, attempt.queue, attempt.id, env.job, attempts)
        policy = policy_for(env, self.defaults)
        if stop.timed_out:
            self.events.emit(JobTimedOut(*meta, timeout=policy.timeout or 0.0))
        decision = retry.after_error(
            policy, attempts, env.exceptions + 1, time.time(), timed_out=stop.timed_out
        )
        payload = envelope_mod.encode(env.with_exception_counted())
        if decision.retry:
            return Outcome(Kind.RELEASED, delay=decision.delay, payload=payload, reason=error_text)
        self.runner.call_failed_hook(attempt, stop.error)
        self.events.emit(JobFailed(*meta, exception=stop.error))
        reason = f"{error_text} ({decision.reason})"
        return Outcome(Kind.FAILED, error=reason, reason=reason)

    def _settle(
        self, reservation: Reservation, outcome: Outcome, bus_write: Callable[[], bool] | None
    ) -> None:
        if bus_write is not None:  # chain hand-over / batch counters, atomic with the outcome
            done = self._persist(bus_write)
        elif outcome.kind is Kind.RELEASED:
            done = self._persist(lambda: reservation.release(outcome.delay, outcome.payload))
        elif outcome.kind is Kind.FAILED:
            # the failed store keeps text: bytes that are not UTF-8 (a corrupt payload) are kept
            # readable instead of making every attempt to record the failure crash the worker
            payload = reservation.payload.decode("utf-8", "replace").encode()
            record = FailedRecord(
                uuid=reservation.id, connection=self.driver.connection, queue=reservation.queue,
                payload=payload, exception=outcome.error or outcome.reason, failed_at=time.time(),
            )  # fmt: skip
            done = self._persist(lambda: reservation.fail(record))
        else:
            done = self._persist(reservation.ack)
        if not done:
            log.warning(
                "job %s: lease was lost before settling; its new owner decides", reservation.id
            )

    def _beat(self, now: float) -> None:
        if now < self._next_beat:
            return
        self._next_beat = now + self.options.heartbeat_every
        info = WorkerInfo(
            self.id, socket.gethostname(), os.getpid(), self.options.queues,
            self.started_at, time.time(), self.processed, self._current,
        )  # fmt: skip
        self._quietly(lambda: self.driver.heartbeat(info))

    def _persist(self, op: Callable[[], T], stop_gives_up: bool = False) -> T:
        """Retry an operation on the queue's server until it goes through.

        A broken connection must never fail a job or end the worker; a forced stop (second
        signal) gives up, and the job comes back when its lease runs out. An operation that
        holds nothing yet (a claim: ``stop_gives_up``) gives up at the first signal, so a
        worker waiting for its server stops when told. A signal cuts the pause short.
        """
        pause = 0.1
        while True:
            try:
                return op()
            except ConnectionUnavailable as exc:
                if self.signals.aborting or (stop_gives_up and self.signals.stopping):
                    raise
                log.warning("queue server unavailable, retrying in %.1fs: %s", pause, exc)
                self._pause(pause)
                pause = min(pause * 2, 5.0)

    def _pause(self, seconds: float) -> None:
        """Sleep, waking early when a signal arrives (its byte on the wakeup pipe)."""
        fd = self.signals.wakeup_fd
        if fd is None:
            time.sleep(seconds)
        elif select.select([fd], [], [], seconds)[0]:
            drain(fd)  # the flags hold the news; the next pause must not end at once

    def _quietly(self, op: Callable[[], T]) -> T | None:
        try:
            return op()
        except ConnectionUnavailable as exc:
            log.debug("control-plane call failed: %s", exc)
            return None


class Worker(WorkerLoop[SerialRunner]):
    """One job at a time (``--concurrency 1``, ``--in-process``)."""

    def run(self) -> int:
        self.signals.install()
        self._restart_mark = self._quietly(self.driver.restart_requested_at)
        reason = "stopped"
        try:
            running: Running | None = None
            while True:
                if running is None:
                    reason = self._stop_reason() or ""
                    if reason:
                        break
                    if self.events.has_listeners():
                        self.events.emit(WorkerLooping(self.driver.connection, self.options.queues))
                    flush_logs()  # about to wait: nothing should sit in a buffer meanwhile
                    reservation = self._reserve()
                    if reservation is None:
                        if self.options.stop_when_empty and not self.signals.stopping:
                            reason = "queue empty"
                            break
                        continue
                    running = self._start(reservation)
                    self._prefetch()
                finished, outcome = running, self._finish(running)
                running = self._settle_and_start_next(finished, outcome)
                self._log(finished, outcome)
                if self.options.once:
                    reason = "--once"
                    break
        finally:
            self._shut_down(reason)
        return 0

    def _settle_and_start_next(self, finished: Running, outcome: Outcome) -> Running | None:
        """Settle the finished job and start the next before logging, so the executor works
        while this process logs. A prefetched job starts first, so the executor runs it while
        this process settles the last one and tops up the prefetched ones."""
        want_next = not (self.options.once or self._stop_reason())
        self._short = time.perf_counter() - finished.started < self.options.prefetch_hold
        self._ended(finished.reservation, outcome)
        if not want_next:
            self._hand_back_held()
        if not self._held:
            n = 1 + self._wanted(starting=1) if want_next else 0
            claimed = self._advance(finished.reservation, outcome, n, count=True)
            if not claimed:
                return None
            running = self._start(claimed[0])
            self._hold(claimed[1:])
            self._prefetch()
            return running
        running = self._start(self._begin(self._held.popleft()))
        if not self._defer(finished.reservation, outcome):
            self._hold(self._advance(finished.reservation, outcome, self._wanted()))
        return running

    def _start(self, reservation: Reservation) -> Running:
        running = self._running(reservation)
        self.runner.start(running.attempt)
        self._held_since = time.monotonic()  # the queued jobs now wait behind this one
        return running

    def _queue(self, reservation: Reservation, behind: int) -> None:
        if not may_queue(reservation.payload):
            return
        self.runner.queue(self._attempt(reservation), behind)

    def _finish(self, running: Running) -> Outcome:
        reservation, attempt = running.reservation, running.attempt
        every = min(1.0, self._renew_every(), self.options.prefetch_hold if self._held else 1.0)
        try:
            return self.runner.wait(
                self._timeout_of(running.envelope), self._ticker(reservation),
                tick_every=every, wakeup=self.signals.wakeup_fd,
            )  # fmt: skip
        except Interrupted as stop:
            return self._interrupted(attempt, stop)

    def _ticker(self, reservation: Reservation) -> Callable[[], bool]:
        renew_every = self._renew_every()
        next_renew = time.monotonic() + renew_every
        told = False

        def tick() -> bool:
            nonlocal next_renew, told
            now = time.monotonic()
            if self.signals.stopping and not told:
                told = True
                log.info(
                    "received %s: finishing job %s, then stopping (again: release it, stop now)",
                    self.signals.received, reservation.id,
                )  # fmt: skip
                self._hand_back_held()
            if now >= next_renew:
                next_renew = now + renew_every
                self._renew(reservation)
                for held in self._held:
                    self._renew(held)
            self._flush_deferred(persist=False)  # the job runs long: what was kept goes now
            if self._held_too_long(now):
                self._hand_back_held()
            self._beat(now)
            flush_logs()
            return not self.signals.aborting

        return tick


def envelope_of(reservation: Reservation, max_size: int) -> Envelope | None:
    """The decoded envelope, or None when the payload is malformed (the executor reports it)."""
    try:
        return envelope_mod.decode(reservation.payload, max_size)
    except PayloadError:
        return None


def may_queue(payload: bytes) -> bool:
    """Whether a prefetched job may wait queued in the executor: not a batch's job, whose
    batch may be cancelled until it starts, and which the control process asks about then
    (``bus.settle.batch_cancelled``). One substring test; a plain job that only mentions
    ``"batch_id"`` in its arguments is handed over when it starts, as it would be unqueued."""
    return b'"batch_id"' not in payload


def handed_back(env: Envelope, reason: str) -> Outcome:
    """Release a claim that was not the job's fault, so it does not count against tries."""
    returned = envelope_mod.encode(env.with_claim_returned())
    return Outcome(Kind.RELEASED, payload=returned, reason=reason)


def flush_logs() -> None:
    """Push out log lines held by a buffering handler (see ``cli.common.setup_logging``)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
