"""The executor child for ``--concurrency N``: one process, one event loop, several attempts.

The control process hands over an attempt only when it can start at once (see
``concurrent.ConcurrentWorker``), so the child needs no queue of its own: each request becomes a
task. Outcomes go back tagged with the job's id, several per write when they finish together.
An ``async def handle`` is cancelled at its timeout here; anything that blocks the loop (sync
code, C code) is stopped by the control process with SIGKILL, as in ``process.ChildRunner``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection, wait

import msgspec

from ..errors import WorkerLost
from .executor import Attempt, Executor
from .outcome import Kind, Outcome
from .process import (
    ForkedChild,
    Gate,
    Interrupted,
    Spin,
    become_child,
    current_rss,
    interruption,
)
from .signals import drain

log = logging.getLogger("conveyor.worker")

#: op ("run": a sync job, "task": an async one, "failed": its hook), job id, queue, connection,
#: payload, attempts, batch cancelled, error text (for "failed"), timeout (0: none), queued seq
#: (``process.Gate``); a message is a list of them
_Request = tuple[str, str, str, str, bytes, int, bool, str, float, int]
_encode = msgspec.msgpack.Encoder().encode
_decode_requests = msgspec.msgpack.Decoder(list[_Request]).decode
_decode_done = msgspec.msgpack.Decoder(list[tuple[str, Outcome]]).decode


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
    asyncio.run(_serve(conn, executor, report_rss, gate, spin))


async def _serve(
    conn: Connection, executor: Executor, report_rss: bool, gate: Gate, spin: float
) -> None:
    await _Server(conn, executor, report_rss, gate, Spin(conn.fileno(), spin)).serve()


class _Server:
    """Turns each request into a task on this loop and sends outcomes back as they finish."""

    def __init__(
        self, conn: Connection, executor: Executor, report_rss: bool, gate: Gate, spin: Spin
    ) -> None:
        self.conn, self.executor, self.report_rss, self.gate = conn, executor, report_rss, gate
        self.spin_for_next = spin
        self.loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self.tasks: set[asyncio.Task[None]] = set()
        self.outbox: list[tuple[str, Outcome]] = []
        #: requests read but not yet taken: the rest of a message of several
        self.pending: deque[_Request] = deque()

    async def serve(self) -> None:
        fd = self.conn.fileno()
        self.loop.add_reader(fd, self._readable)
        await self.closed
        self.loop.remove_reader(fd)
        for task in self.tasks:  # "stop" comes only when idle; a closed pipe: the worker is gone
            task.cancel()

    def _close(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def _readable(self) -> None:
        """Take requests until one starts a task: while nothing runs on the loop, the next
        request is awaited with a plain blocking read (after a ``process.Spin``), which is
        cheaper than a turn of the loop, so a stream of sync jobs costs what it costs in
        ``process.ChildRunner``. The rest of a message waits in ``pending`` meanwhile."""
        while True:
            if not self.pending:
                try:
                    self.pending.extend(_decode_requests(self.conn.recv_bytes()))
                except (EOFError, OSError):
                    self._close()
                    return
            request = self.pending.popleft()
            op, (error, timeout, seq) = request[0], request[7:]
            if op == "stop":
                self._close()
                return
            if seq and not self.gate.enter(seq):
                continue  # recalled while queued: the control process handed it back
            attempt = Attempt(*request[1:7])
            if op != "run":
                work = self._run(attempt, timeout) if op == "task" else self._hook(attempt, error)
                task = self.loop.create_task(work)
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                if self.pending:  # the pipe may stay quiet: take the rest on the next turn
                    self.loop.call_soon(self._take_pending)
                return
            # a sync job runs here and now; beside async ones, it blocks them until it returns
            self._reply(attempt.id, self.executor.execute(attempt), at_once=True)
            if self.tasks or self.outbox:
                if self.pending:
                    self.loop.call_soon(self._take_pending)
                return
            if not self.pending:
                self.spin_for_next()

    def _take_pending(self) -> None:
        """``_readable`` for requests already read: never a blocking read while tasks run."""
        if self.pending:
            self._readable()

    async def _run(self, attempt: Attempt, timeout: float) -> None:
        self._reply(attempt.id, await self.executor.execute_async(attempt, timeout or None))

    async def _hook(self, attempt: Attempt, error: str) -> None:
        hook_error = await self.executor.failed_hook_for_async(attempt, interruption(error))
        self._reply(attempt.id, Outcome(kind=Kind.FAILED, error=hook_error))

    def _reply(self, job_id: str, outcome: Outcome, at_once: bool = False) -> None:
        """Queue an outcome; all that finish in one turn of the loop go back in one write."""
        if self.report_rss:  # only --memory needs it: reading /proc costs ~20 % of a no-op job
            outcome = msgspec.structs.replace(outcome, rss=current_rss())
        if not self.outbox and not at_once:
            self.loop.call_soon(self._flush)
        self.outbox.append((job_id, outcome))
        if at_once:
            self._flush()

    def _flush(self) -> None:
        if not self.outbox:
            return
        batch, self.outbox = self.outbox, []
        try:
            self.conn.send_bytes(_encode(batch))
        except OSError:
            self._close()


class ConcurrentRunner(ForkedChild):
    """The control process's side: hand attempts over, collect outcomes as they finish."""

    _main = staticmethod(_child_main)
    _stop_request = _encode([("stop", "", "", "", b"", 0, False, "", 0.0, 0)])
    _encode = staticmethod(_encode)

    def start(self, attempt: Attempt, timeout: float | None, concurrent: bool) -> None:
        """Hand an attempt over: ``concurrent`` ones become tasks, others run there and then.
        An attempt queued with ``queue()`` is already there."""
        if self.take_queued(attempt.id):
            return
        op = "task" if concurrent else "run"
        self._hand_over(_encode([_request(op, attempt, timeout=timeout or 0.0)]))

    def queue(self, attempt: Attempt, timeout: float | None, concurrent: bool, behind: int) -> None:
        """Queue an attempt behind the running sync job and ``behind`` queued ones (see
        ``ForkedChild._queue``); ``start()`` it once the outcome before it has arrived."""
        op = "task" if concurrent else "run"
        self._queue(
            attempt.id,
            behind,
            lambda seq: _request(op, attempt, timeout=timeout or 0.0, seq=seq),
        )

    def collect(self, timeout: float, wakeup: int | None = None) -> list[tuple[str, Outcome]]:
        """Outcomes that arrived within ``timeout`` s (an empty list if none did); returns at
        once when ``wakeup`` (a signal's wakeup pipe) becomes readable.

        Raises ``Interrupted`` when the child died: every attempt it held is lost.
        """
        proc, conn = self._proc, self._conn
        if proc is None or conn is None:
            raise Interrupted(WorkerLost("the process running the jobs is gone"))
        watched = [conn, proc.sentinel] if wakeup is None else [conn, proc.sentinel, wakeup]
        ready = wait(watched, timeout=max(0.0, timeout))
        if wakeup is not None and wakeup in ready:
            drain(wakeup)
        done: list[tuple[str, Outcome]] = []
        if conn in ready:  # one message: the child sends what finished together in one
            try:
                done = _decode_done(conn.recv_bytes())
            except (EOFError, OSError):
                ready = [proc.sentinel]
        if not done and proc.sentinel in ready:
            self._discard()
            code = proc.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            raise Interrupted(WorkerLost(f"the process running the jobs died ({how})"))
        if self._memory_limit is not None and done:
            rss = max(outcome.rss for _, outcome in done)
            if rss > self._memory_limit and not self.bloated:
                log.info(
                    "executor child uses %.0f MB, over --memory %.0f MB: replacing it once idle",
                    rss / 1048576, self._memory_limit / 1048576,
                )  # fmt: skip
                self.bloated = True
        return done

    def call_failed_hook(
        self, attempt: Attempt, error: BaseException, timeout: float = 30.0
    ) -> None:
        """Run ``failed()`` for an attempt that died with its child; nothing else is running."""
        _, conn = self._ensure_child()
        conn.send_bytes(_encode([_request("failed", attempt, f"{type(error).__name__}: {error}")]))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done = self.collect(deadline - time.monotonic())
            except Interrupted:
                return
            if any(job_id == attempt.id for job_id, _ in done):
                return
        self.kill()


def _request(
    op: str, attempt: Attempt, error: str = "", timeout: float = 0.0, seq: int = 0
) -> _Request:
    return (
        op, attempt.id, attempt.queue, attempt.connection, attempt.payload, attempt.attempts,
        attempt.batch_cancelled, error, timeout, seq,
    )  # fmt: skip
