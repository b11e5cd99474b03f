"""What a worker loop needs of the place where its jobs run.

Three runners exist: ``process.ChildRunner`` (a forked child, one job at a time),
``process.InlineRunner`` (this process, ``--in-process``) and ``async_child.ConcurrentRunner``
(a forked child with an event loop, ``--concurrency``). The loops share everything but the
hand-over: prefetched jobs queued in the runner, recalled when the running job turns out long,
and the ``failed()`` hook of an attempt that died with its process. ``Runner`` is that shared
part; ``SerialRunner`` adds the one-job-at-a-time hand-over of ``loop.Worker``, while
``concurrent.ConcurrentWorker`` hands jobs to its ``ConcurrentRunner`` with a timeout each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .executor import Attempt
from .outcome import Outcome


class Runner(Protocol):
    def send_queued(self) -> None:
        """Write the jobs queued since the last call, as one message."""
        ...

    def recall(self) -> set[str]:
        """Keep the queued jobs from starting; the ids of those already started."""
        ...

    def outcome_ready(self) -> bool:
        """Whether an outcome already waits to be collected."""
        ...

    def call_failed_hook(
        self, attempt: Attempt, error: BaseException, timeout: float = 30.0
    ) -> None:
        """Run ``failed()`` for an attempt whose process was killed or died."""
        ...

    def stop(self) -> None: ...
    def kill(self) -> None: ...


class SerialRunner(Runner, Protocol):
    """One job at a time: hand one over, queue the prefetched ones behind it, wait for it."""

    def start(self, attempt: Attempt) -> None: ...
    def queue(self, attempt: Attempt, behind: int) -> None: ...
    def wait(
        self,
        timeout: float | None,
        tick: Callable[[], bool],
        tick_every: float = 1.0,
        wakeup: int | None = None,
    ) -> Outcome:
        """The outcome of the attempt ``start()`` handed over; ``tick()`` runs while waiting
        and returns False to abandon it (raises ``process.Interrupted``)."""
        ...
