"""Where user code runs: a forked executor child or this process (``--in-process``).

``ForkedChild`` is the process and its pipe, shared with ``async_child`` (the event-loop child
of ``--concurrency``); ``ChildRunner`` here runs one job at a time (``--concurrency 1``). The
child is forked once and reused for job after job. Because it is a separate process in its
own process group, the control process can enforce a hard timeout (SIGKILL to the group, which
also stops a job stuck in C code or a system call), notice a segfault or ``os._exit`` the moment
it happens, and replace a child that grew past ``--memory`` between jobs.

A prefetched job is queued in the pipe behind the running one, so the child goes straight on to
it without waiting for the control process to hand it over; jobs claimed together are queued in
one message. A shared ``Gate`` settles the race between the child starting a queued job and the
control process recalling it (to give it to an idle worker when the running job turns out long,
or because the worker is stopping): exactly one of the two wins.

When a job ends and no next one is queued, the child polls its pipe for a moment (``Spin``)
before it goes to sleep on it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import resource
import select
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any

import msgspec

from ..errors import JobTimedOut, MaxAttemptsExceeded, WorkerLost
from ..text import describe
from .executor import Attempt, Executor
from .outcome import Kind, Outcome, pack, unpack
from .signals import drain

log = logging.getLogger("conveyor.worker")

_request = msgspec.msgpack.Encoder()
#: a message to the child is a list of requests, several when jobs are queued together: op,
#: job id, queue, connection, payload, attempts, batch cancelled, error text (for "failed"),
#: queued seq
_decode_request = msgspec.msgpack.Decoder(
    list[tuple[str, str, str, str, bytes, int, bool, str, int]]
)


class Interrupted(Exception):
    """The attempt was abandoned by the control process (timeout, lost child, forced stop)."""

    def __init__(self, error: BaseException, timed_out: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.timed_out = timed_out


_PAGE = os.sysconf("SC_PAGE_SIZE")

#: how long the executor child polls for its next job after one ends, before it sleeps: short,
#: because a polling child takes CPU from other workers on the same cores (0.3 ms cost four
#: workers on two cores 14 % of their throughput, 0.1 ms nothing measurable)
SPIN = 0.0001


class Spin:
    """Poll a pipe for a moment before a blocking read of it.

    Waking a process asleep on a pipe costs about 30 µs on a virtual machine, paid by the
    writer (here the control process, which also has to wait for its queue's server) as much
    as by the sleeper, and a stream of short jobs puts the child to sleep after every job: it
    ends its job before the control process has settled it and claimed the next. Polling
    through that round trip keeps the child awake for the hand-over. It spends CPU only while
    it polls, at most ``seconds`` per job, and none when the next job is already queued.
    """

    def __init__(self, fd: int, seconds: float) -> None:
        self._seconds = seconds
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)

    def __call__(self) -> None:
        """Return once the pipe is readable (or closed), or after ``seconds``."""
        if self._seconds <= 0:
            return
        poll, clock = self._poller.poll, time.perf_counter
        end = clock() + self._seconds
        while not poll(0) and clock() < end:
            pass


def current_rss() -> int:
    """Current resident memory, read after every job: /proc is ~100x cheaper than psutil."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _fields(
    op: str, attempt: Attempt, error: str = "", seq: int = 0
) -> tuple[str, str, str, str, bytes, int, bool, str, int]:
    return (
        op, attempt.id, attempt.queue, attempt.connection, attempt.payload, attempt.attempts,
        attempt.batch_cancelled, error, seq,
    )  # fmt: skip


class Gate:
    """Who gets a queued job: the child starting it or the control process recalling it.

    Each queued request carries a sequence number ``seq``, growing with each one. The shared
    marks hold the last ``seq`` the child started and the range the control process last
    recalled: the child skips a request in that range, and a recall takes every request in it
    that the child has not started. A range, not a threshold: a job taken off the queue as
    started (``ForkedChild.take_queued``) may still be on its way to the child, and must not
    be caught by a later recall. Each recall replaces the last range: jobs are queued again only
    behind a job handed over after the recall, so the child has read past the recalled ones by
    then. The lock is almost never contended, so a check costs about 0.6 µs here, without a
    system call.
    """

    def __init__(self, ctx: Any) -> None:
        self._marks = ctx.Array("q", 3)  # last started, first and last recalled

    def enter(self, seq: int) -> bool:
        """Child: may the queued job ``seq`` start? Not if it was recalled."""
        with self._marks.get_lock():
            if self._marks[1] <= seq <= self._marks[2]:
                return False
            self._marks[0] = seq
            return True

    def recall(self, first: int, last: int) -> int:
        """Control process: stop the queued jobs ``first`` to ``last`` that have not started;
        returns the last ``seq`` started, so that the jobs after it are the ones recalled."""
        with self._marks.get_lock():
            self._marks[1], self._marks[2] = first, last
            return int(self._marks[0])


def interruption(text: str) -> BaseException:
    """Rebuild, in the child, the error that ended an attempt (sent as ``"Type: message"``), so
    ``failed(exc)`` can tell a timeout from a lost process by its type."""
    kind, _, message = text.partition(": ")
    known: dict[str, type[Exception]] = {
        cls.__name__: cls for cls in (JobTimedOut, WorkerLost, MaxAttemptsExceeded)
    }
    return known[kind](message) if kind in known else RuntimeError(text)


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this child the moment the control process dies (Linux).

    Without it, a child whose worker was SIGKILLed (OOM killer, crash) finishes its job unwatched
    while the job's lease runs out and another worker runs it too. Where ``prctl`` is missing,
    the child still exits at its next read of the closed pipe, after the job at hand.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _let_the_control_process_decide(signum: int, frame: FrameType | None) -> None:
    """SIGTERM / SIGINT sent to the whole tree (``systemctl stop``, a terminal) must not kill a
    job the control process means to finish; it stops the child itself, with SIGKILL, when it
    gives up. A handler rather than SIG_IGN: exec() resets it, so programs a job starts still
    get these signals as usual."""


def become_child(parent_end: Connection, parent_pid: int) -> None:
    """What every executor child does first: die with its parent, lead its own process group
    (so a kill reaches what the job started), and leave SIGTERM / SIGINT to the parent."""
    _die_with_parent(parent_pid)
    parent_end.close()
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)  # the control process's wakeup pipe is not this process's business
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _let_the_control_process_decide)


def _child_main(
    conn: Connection,
    parent_end: Connection,
    make_executor: Callable[[], Executor],
    parent_pid: int,
    report_rss: bool,
    gate: Gate,
    spin: float,
) -> None:
    become_child(parent_end, parent_pid)
    executor = make_executor()
    spin_for_next = Spin(conn.fileno(), spin)
    while True:
        try:
            requests = _decode_request.decode(conn.recv_bytes())
        except (EOFError, OSError):
            return
        for i, request in enumerate(requests, 1):
            op, job_id, queue, connection, payload, attempts, cancelled, error, seq = request
            if op == "stop":
                return
            if seq and not gate.enter(seq):
                continue  # recalled while queued: the control process handed it back
            attempt = Attempt(job_id, queue, connection, payload, attempts, cancelled)
            if op == "run":
                outcome = executor.execute(attempt)
                if report_rss:  # only --memory needs it: reading /proc costs ~20 % of a job
                    outcome = msgspec.structs.replace(outcome, rss=current_rss())
                conn.send_bytes(pack(outcome))
                if i == len(requests):  # else the next is already here
                    spin_for_next()
            else:
                hook_error = executor.failed_hook_for(attempt, interruption(error))
                conn.send_bytes(pack(Outcome(kind=Kind.FAILED, error=hook_error)))


class ForkedChild:
    """One forked executor process and its pipe: forked on first use and after a loss, stopped
    politely, killed with its whole process group. The runners add what crosses the pipe."""

    #: the child's main function, called as ``main(conn, parent_end, make_executor, parent_pid,
    #: report_rss, gate, spin)``
    _main: Callable[[Connection, Connection, Callable[[], Executor], int, bool, Gate, float], None]
    #: the request that asks an idle child to exit
    _stop_request: bytes
    #: a list of requests as one message
    _encode: Callable[[list[Any]], bytes]

    def __init__(
        self,
        make_executor: Callable[[], Executor],
        memory_limit_mb: float | None,
        spin: float = SPIN,
    ) -> None:
        self._make_executor = make_executor
        self._memory_limit = memory_limit_mb * 1024 * 1024 if memory_limit_mb else None
        self._spin = spin
        self._ctx = multiprocessing.get_context("fork")
        self._proc: Any = None
        self._conn: Connection | None = None
        self._gate: Gate | None = None
        #: (sequence number, job id) of the jobs queued behind the running one, in order, and the
        #: last sequence number given out
        self._queued: deque[tuple[int, str]] = deque()
        self._seq = 0
        #: requests queued since the last ``send_queued()``
        self._unsent: list[Any] = []
        self.children_started = 0
        #: the child grew past ``--memory``: replace it once it is idle
        self.bloated = False

    @property
    def child_pid(self) -> int | None:
        return int(self._proc.pid) if self._proc is not None else None

    def _ensure_child(self) -> tuple[Any, Connection]:
        if self._proc is None or self._conn is None:  # a dead child is discarded when seen
            self._discard()
            parent_end, child_end = self._ctx.Pipe(duplex=True)
            self._gate = Gate(self._ctx)
            proc = self._ctx.Process(
                target=type(self)._main,
                args=(
                    child_end,
                    parent_end,
                    self._make_executor,
                    os.getpid(),
                    self._memory_limit is not None,
                    self._gate,
                    self._spin,
                ),
                daemon=True,
            )
            proc.start()
            child_end.close()
            self._proc, self._conn = proc, parent_end
            self.children_started += 1
        return self._proc, self._conn

    def _hand_over(self, request: bytes) -> None:
        _, conn = self._ensure_child()
        try:
            conn.send_bytes(request)
        except OSError:  # the child died while idle (OOM killer, kill by hand): fork a new one
            self._discard()
            _, conn = self._ensure_child()
            conn.send_bytes(request)

    @property
    def queued(self) -> int:
        """How many jobs wait in the child's pipe behind the running one."""
        return len(self._queued)

    def _queue(self, job_id: str, behind: int, request: Callable[[int], Any]) -> None:
        """Queue a request behind the running job and the ``behind`` jobs queued before it;
        ``send_queued()`` writes it.

        Refused, and the job later handed over as usual, where queueing cannot keep the order:
        when fewer than ``behind`` are queued (the child was replaced meanwhile); and with
        ``--memory``, since the child is replaced after a job that grew too big, and a job
        queued behind it would start before the replacement.
        """
        if self._memory_limit is not None or self._conn is None or len(self._queued) != behind:
            return
        self._seq += 1
        self._unsent.append(request(self._seq))
        self._queued.append((self._seq, job_id))

    def send_queued(self) -> None:
        """Write the requests queued since the last call as one message: one system call, and
        at most one wakeup of the child, for several jobs."""
        if not self._unsent:
            return
        batch, self._unsent = self._unsent, []
        try:
            assert self._conn is not None, "queued without a child"
            self._conn.send_bytes(self._encode(batch))
        except OSError:  # the child is gone: the caller starts the jobs on a new one later
            for _ in batch:
                self._queued.pop()

    def recall(self) -> set[str]:
        """Keep the queued jobs from starting; returns the ids of those the child has already
        started, which stay queued and run. The others will not run (recalled, or lost with
        their child)."""
        if not self._queued or self._gate is None:
            self._queued.clear()
            return set()
        started = self._gate.recall(self._queued[0][0], self._queued[-1][0])
        while self._queued and self._queued[-1][0] > started:
            self._queued.pop()
        return {job_id for _, job_id in self._queued}

    def take_queued(self, job_id: str) -> bool:
        """The running job's outcome has arrived: is the queued job ``job_id`` running now?
        The child goes straight on to the first queued job, so yes, unless it was lost with a
        child that was replaced."""
        if not self._queued:
            return False
        _, first = self._queued.popleft()
        assert job_id == first, "a job is queued in the child; start that one first"
        return True

    def outcome_ready(self) -> bool:
        """Whether another outcome already waits in the pipe."""
        return self._conn is not None and self._conn.poll(0)

    def kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.pid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.join(5)
        self._discard()

    def stop(self) -> None:
        """Let the child finish by closing its pipe; kill it if it lingers. A job queued in
        the pipe is recalled first, so that the child does not start it on its way out."""
        self.recall()
        proc, conn = self._proc, self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send_bytes(self._stop_request)
            conn.close()
        if proc is not None:
            proc.join(2)
            if proc.is_alive():
                self.kill()
        self._proc, self._conn, self.bloated = None, None, False
        self._queued.clear()
        self._unsent.clear()

    def _discard(self) -> None:
        self.bloated = False
        self._queued.clear()
        self._unsent.clear()
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(0.1)
        self._proc, self._conn = None, None


class ChildRunner(ForkedChild):
    """One job at a time in the child: the plain executor of ``--concurrency 1``."""

    _main = staticmethod(_child_main)
    _stop_request = _request.encode([("stop", "", "", "", b"", 0, False, "", 0)])
    _encode = staticmethod(_request.encode)

    def __init__(
        self,
        make_executor: Callable[[], Executor],
        memory_limit_mb: float | None,
        spin: float = SPIN,
    ) -> None:
        super().__init__(make_executor, memory_limit_mb, spin)
        self._started = 0.0

    def start(self, attempt: Attempt) -> None:
        """Hand the attempt to the child and return at once; ``wait()`` collects the outcome.

        Split so that the control process can settle the previous job while this one runs.
        """
        if self.take_queued(attempt.id):
            self._started = time.monotonic()
            return
        self._hand_over(_request.encode([_fields("run", attempt)]))
        self._started = time.monotonic()

    def queue(self, attempt: Attempt, behind: int) -> None:
        """Queue ``attempt`` behind the running one and ``behind`` queued ones (see
        ``ForkedChild._queue``); ``start()`` it once the outcome before it has arrived, as for
        any other attempt."""
        self._queue(attempt.id, behind, lambda seq: _fields("run", attempt, seq=seq))

    def wait(
        self,
        timeout: float | None,
        tick: Callable[[], bool],
        tick_every: float = 1.0,
        wakeup: int | None = None,
    ) -> Outcome:
        """Wait for the attempt ``start()`` handed over, enforcing its timeout."""
        proc, conn = self._proc, self._conn
        assert proc is not None and conn is not None, "wait() without start()"
        watched = [conn, proc.sentinel] if wakeup is None else [conn, proc.sentinel, wakeup]
        deadline = self._started + timeout if timeout else None
        while True:
            now = time.monotonic()
            wake = now + tick_every if deadline is None else min(now + tick_every, deadline)
            ready = wait(watched, timeout=max(0.0, wake - now))
            if wakeup is not None and wakeup in ready:
                drain(wakeup)
            if conn in ready:
                try:
                    outcome = unpack(conn.recv_bytes())
                except (EOFError, OSError):
                    ready = [proc.sentinel]
                else:
                    self._recycle_if_bloated(outcome)
                    return outcome
            if proc.sentinel in ready:
                self._discard()
                code = proc.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                raise Interrupted(WorkerLost(f"the process running the job died ({how})"))
            if deadline is not None and time.monotonic() >= deadline:
                self.kill()
                raise Interrupted(
                    JobTimedOut(f"job ran longer than its {timeout:g}s timeout"), True
                )
            if not tick():
                self.kill()
                raise Interrupted(WorkerLost("the worker was stopped while the job ran"))

    def call_failed_hook(
        self, attempt: Attempt, error: BaseException, timeout: float = 30.0
    ) -> None:
        """Run the job's ``failed()`` hook in a fresh child for an attempt that died there."""
        proc, conn = self._ensure_child()
        conn.send_bytes(_request.encode([_fields("failed", attempt, describe(error))]))
        if not wait([conn, proc.sentinel], timeout=timeout) or conn not in wait([conn], 0):
            self.kill()
            return
        try:
            conn.recv_bytes()
        except (EOFError, OSError):
            self._discard()

    def _recycle_if_bloated(self, outcome: Outcome) -> None:
        if self._memory_limit is not None and outcome.rss > self._memory_limit:
            log.info(
                "executor child uses %.0f MB, over --memory %.0f MB: replacing it",
                outcome.rss / 1048576, self._memory_limit / 1048576,
            )  # fmt: skip
            self.stop()


class InlineRunner:
    """Runs jobs in this process: fastest, but no hard timeout and a crash takes the worker."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.child_pid: int | None = None
        self.children_started = 0
        self._attempt: Attempt | None = None

    def start(self, attempt: Attempt) -> None:
        self._attempt = attempt

    queued = 0

    def queue(self, attempt: Attempt, behind: int) -> None:
        """Nothing runs beside this process's own job: a prefetched job cannot wait queued."""

    def send_queued(self) -> None:
        pass

    def recall(self) -> set[str]:
        return set()

    def outcome_ready(self) -> bool:
        return False

    def wait(
        self,
        timeout: float | None,
        tick: Callable[[], bool],
        tick_every: float = 1.0,
        wakeup: int | None = None,
    ) -> Outcome:
        attempt, self._attempt = self._attempt, None
        assert attempt is not None, "wait() without start()"
        return self.executor.execute(attempt)

    def call_failed_hook(
        self, attempt: Attempt, error: BaseException, timeout: float = 30.0
    ) -> None:
        self.executor.failed_hook_for(attempt, error)

    def stop(self) -> None:
        pass

    def kill(self) -> None:
        pass
