"""The worker loop with ``--concurrency N``: up to N ``async def handle`` jobs at once.

The same steps as ``loop.Worker`` (both are a ``loop.WorkerLoop``) — reserve, hand to the
executor, settle — with a window of jobs in flight instead of one. A job is handed to the
executor only when it can start at once, with one exception: while a sync job runs, the next is
prefetched uncounted and queued behind it (see ``loop``), recalled if the sync job runs long or
the worker stops. A sync job claimed beside async ones starts at once and blocks them until it
returns. Sync jobs therefore still run one at a time, as in Laravel.

Every job has a hard deadline: its timeout, plus a grace period for async jobs, which the child
cancels on time itself. When one overruns, the child is killed; that job times out and every
other job in flight is handed back without counting the attempt.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from ..drivers.base import Driver, Reservation
from ..envelope import Envelope
from ..errors import JobTimedOut, WorkerLost
from ..events import EventBus
from .async_child import ConcurrentRunner
from .executor import WorkerDefaults
from .loop import (
    Running,
    WorkerLoop,
    WorkerOptions,
    envelope_of,
    flush_logs,
    handed_back,
    may_queue,
)
from .outcome import Outcome
from .process import Interrupted

log = logging.getLogger("conveyor.worker")

#: how much longer than its timeout an async job may run before the child is killed: the child
#: cancels it on time unless something blocks the event loop
ASYNC_GRACE = 2.0
#: between polls for new jobs while some run and there is room for more
_POLL_MIN, _POLL_MAX = 0.002, 0.1


@dataclass(frozen=True)
class _Flight:
    running: Running
    deadline: float
    #: an ``async def handle`` job, running as a task beside others
    concurrent: bool


class ConcurrentWorker(WorkerLoop[ConcurrentRunner]):
    def __init__(
        self,
        driver: Driver,
        runner: ConcurrentRunner,
        events: EventBus,
        defaults: WorkerDefaults,
        options: WorkerOptions,
        concurrency: int,
    ) -> None:
        super().__init__(driver, runner, events, defaults, options)
        self.concurrency = concurrency
        self._flights: dict[str, _Flight] = {}
        #: envelope and timeout of each job queued in the child, decoded once for both its
        #: queueing and its start
        self._decoded: dict[str, tuple[Envelope | None, float | None]] = {}
        self._poll = _POLL_MIN
        self._next_renew = self._next_tick = 0.0
        self._told = False

    def run(self) -> int:
        self.signals.install()
        self._restart_mark = self._quietly(self.driver.restart_requested_at)
        self._next_renew = time.monotonic() + self._renew_every()
        reason = "stopped"
        try:
            while True:
                reason = self._stop_reason() or ""
                if self._has_room():
                    flush_logs()
                    if self._held:
                        self._start_held()
                        continue
                    claimed = self._reserve(wait=0.0 if self._flights else None)
                    if claimed is not None:
                        self._launch(claimed)
                        self._poll = _POLL_MIN
                        continue  # fill the window before waiting
                    if not self._flights:
                        if self.options.stop_when_empty and not self.signals.stopping:
                            reason = "queue empty"
                            break
                        continue
                if not self._flights:
                    if reason:
                        break
                    if self.options.once and self.started:
                        reason = "--once"
                        break
                    self.runner.stop()  # bloated (--memory): replaced at the next claim
                    continue
                collected = self._collect()
                for i, (flight, outcome) in enumerate(collected):
                    self._settle_and_fill(flight, outcome, more=i + 1 < len(collected))
                    self._log(flight.running, outcome)
        finally:
            self._shut_down(reason)
        return 0

    def _has_room(self) -> bool:
        """Whether to claim another job now. The cheap checks first: while a sync job runs,
        which is most of the time in a stream of them, the answer is no."""
        if len(self._flights) >= self.concurrency:
            return False
        if not all(f.concurrent for f in self._flights.values()):
            return False
        if self._stop_reason() or self.runner.bloated:
            return False
        return not (self.options.once and self.started >= 1)

    def _settle_and_fill(self, flight: _Flight, outcome: Outcome, more: bool) -> None:
        """Settle a finished job and fill its place. A prefetched job starts first; the
        settlement, its start and the next claims (prefetches if there is no room for them to
        start) then share one round trip, which may wait to serve later outcomes too, as when
        ``more`` came in with this one (see ``Worker._defer``)."""
        reservation = flight.running.reservation
        if not flight.concurrent:
            self._short = time.perf_counter() - flight.running.started < self.options.prefetch_hold
        self._ended(reservation, outcome)
        room = self._has_room()
        # a queued job started if the sync job it was queued behind just ended; one held here
        # starts when there is room, or goes back when the worker stops
        start_held = not flight.concurrent if self.runner.queued else room
        if not self._held or not start_held:
            # held jobs start first, in order: the child may be running them already (an async
            # job's outcome can be read before that of the sync job it was queued behind)
            room = room and not self._held
            # after a sync job, the next is likely sync too: claim those to queue behind it now
            ahead = self._wanted(starting=1) if room and not flight.concurrent else 0
            claimed = self._advance(reservation, outcome, int(room) + ahead, count=True)
            if claimed:
                self._launch(claimed[0], prefetch=len(claimed) == 1)
                self._hold(claimed[1:])
            return
        self._launch(self._begin(self._held.popleft()), prefetch=False)
        if self._defer(reservation, outcome, more):
            return
        room = self._has_room() and not self._held  # the held ones start first, in order
        n = 1 if room else self._wanted()
        jobs = self._advance(reservation, outcome, n, count=room)
        if room:
            for job in jobs:
                self._launch(job)
        else:
            self._hold(jobs)

    def _start_held(self) -> None:
        held = self._begin(self._held.popleft())
        self._launch(held, prefetch=False)
        self._flush_deferred()
        if not self._has_room():
            self._prefetch()

    def _queue(self, reservation: Reservation, behind: int) -> None:
        """Queue a prefetched job behind the running sync job; with none running, the
        executor would start it at once, so it waits here instead (as a batch's job does, see
        ``loop.may_queue``)."""
        sync_running = any(not f.concurrent for f in self._flights.values())
        if sync_running and may_queue(reservation.payload):
            env = envelope_of(reservation, self.defaults.max_payload)
            concurrent = env is not None and env.async_handle
            timeout = self._timeout_of(env)
            self._decoded[reservation.id] = (env, timeout)
            self.runner.queue(self._attempt(reservation), timeout, concurrent, behind)

    def _hand_back_held(self) -> None:
        super()._hand_back_held()
        held = {reservation.id for reservation in self._held}
        self._decoded = {k: v for k, v in self._decoded.items() if k in held}

    def _launch(self, reservation: Reservation, prefetch: bool = True) -> None:
        """Start a claimed job; while a sync job runs, prefetch the next (see ``_prefetch``)."""
        decoded = self._decoded.pop(reservation.id, None)
        running = self._running(reservation, decoded[0] if decoded else None)
        concurrent = running.envelope is not None and running.envelope.async_handle
        timeout = decoded[1] if decoded else self._timeout_of(running.envelope)
        grace = ASYNC_GRACE if concurrent else 0.0
        deadline = time.monotonic() + timeout + grace if timeout else math.inf
        self._flights[reservation.id] = _Flight(running, deadline, concurrent)
        self.runner.start(running.attempt, timeout, concurrent)
        if not concurrent:
            self._held_since = time.monotonic()  # the queued jobs now wait behind this one
            if prefetch:
                self._prefetch()

    def _collect(self) -> list[tuple[_Flight, Outcome]]:
        """Wait a little for outcomes, then look after the jobs still running: renew their
        leases, and kill the child for a job past its deadline or a forced stop."""
        now = time.monotonic()
        soonest = min(f.deadline for f in self._flights.values())
        wait = min(soonest - now, self._renew_every(), 1.0)
        if self._has_room():
            wait = min(wait, self._poll)
            self._poll = min(self._poll * 2, _POLL_MAX)
        if self._held:
            wait = min(wait, self._held_since + self.options.prefetch_hold - now)
        try:
            done = self.runner.collect(max(wait, 0.0), wakeup=self.signals.wakeup_fd)
        except Interrupted as lost:
            return self._all_lost(lost)
        settled = [(self._flights.pop(job_id), o) for job_id, o in done if job_id in self._flights]
        now = time.monotonic()
        if now >= self._next_tick or (self.signals.stopping and not self._told):
            self._next_tick = now + min(1.0, self._renew_every())
            self._look_after(now)
        if not settled:
            self._flush_deferred(persist=False)  # a job runs long: what was kept goes now
            if self._held_too_long(now):
                self._hand_back_held()
        if self.signals.aborting and self._flights:
            self.runner.kill()
            return settled + self._all_lost(Interrupted(WorkerLost("the worker was stopped")))
        overdue = [f for f in self._flights.values() if now >= f.deadline]
        if overdue:
            self.runner.kill()
            settled += self._overdue(overdue)
        return settled

    def _overdue(self, overdue: list[_Flight]) -> list[tuple[_Flight, Outcome]]:
        settled = []
        for flight in overdue:
            del self._flights[flight.running.reservation.id]
            timeout = self._timeout_of(flight.running.envelope) or 0.0
            stop = Interrupted(JobTimedOut(f"job ran longer than its {timeout:g}s timeout"), True)
            settled.append((flight, self._interrupted(flight.running.attempt, stop)))
        bystanders, self._flights = list(self._flights.values()), {}
        for flight in bystanders:  # killed with the overdue job through no fault of their own
            env = flight.running.envelope
            outcome = (
                handed_back(env, "another job's timeout stopped the executor; released")
                if env is not None
                else self._interrupted(flight.running.attempt, Interrupted(WorkerLost("killed")))
            )
            settled.append((flight, outcome))
        return settled

    def _all_lost(self, lost: Interrupted) -> list[tuple[_Flight, Outcome]]:
        """The child died or was killed with jobs in flight: which one caused it is unknown, so
        each is decided as a lost attempt (handed back uncounted on a forced stop)."""
        flights, self._flights = list(self._flights.values()), {}
        return [(f, self._interrupted(f.running.attempt, lost)) for f in flights]

    def _look_after(self, now: float) -> None:
        if self.signals.stopping and not self._told:
            self._told = True
            log.info(
                "received %s: finishing job %s, then stopping (again: release, stop now)",
                self.signals.received, ", ".join(self._flights),
            )  # fmt: skip
            self._hand_back_held()
        if now >= self._next_renew:
            self._next_renew = now + self._renew_every()
            for flight in list(self._flights.values()):
                self._renew(flight.running.reservation)
            for held in self._held:
                self._renew(held)
        self._beat(now)
        flush_logs()
