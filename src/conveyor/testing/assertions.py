"""The assertions of ``QueueFake``, Laravel's ``Queue::assertPushed`` family, over what it recorded.

Each failure says what was expected and lists what was dispatched instead, decoded back into
jobs with where they went::

    AssertionError: SendWelcomeEmail was not dispatched where <lambda>. Dispatched:
    SendWelcomeEmail(user_id=2) on database/default; NotifySlack(user_id=1) on database/default
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import msgspec

from ..bus.batch import PendingBatch
from ..envelope import Envelope
from ..job import Job
from ..registry import Registry
from .describe import job_of, show_fields, show_job, show_link, show_records, show_where
from .recorder import Recorded

J = TypeVar("J", bound=Job)


@dataclass(frozen=True)
class RecordedBatch:
    """A batch dispatched while faked: what ``assert_batched(where=...)`` is handed."""

    id: str
    name: str
    connection: str
    queue: str
    total_jobs: int
    allows_failures: bool
    #: the jobs of the batch (a chain's first link for a chain), decoded
    jobs: list[Job] = field(default_factory=list)
    #: then / catch / finally: each callback as ``module:function`` or the job's name
    callbacks: dict[str, list[str]] = field(default_factory=dict)

    def has(self, cls: type[Job]) -> bool:
        return any(isinstance(job, cls) for job in self.jobs)


def _seconds(delay: float | timedelta) -> float:
    return delay.total_seconds() if isinstance(delay, timedelta) else float(delay)


@dataclass(frozen=True)
class _Filter:
    """Which recorded jobs a check looks at."""

    cls: type[Job]
    where: Callable[[Any], bool] | None = None
    queue: str | None = None
    connection: str | None = None
    delay: float | timedelta | None = None

    def describe(self) -> str:
        parts = [show_where(self.where)]
        if self.queue is not None:
            parts.append(f" on queue {self.queue!r}")
        if self.connection is not None:
            parts.append(f" on connection {self.connection!r}")
        if self.delay is not None:
            parts.append(f" with a delay of {_seconds(self.delay):g}s")
        return "".join(parts)

    def matches(self, item: Recorded, job: Job) -> bool:
        """Delays match to the second: one given as a datetime is turned into seconds at
        dispatch, a moment after the test computed it."""
        return (
            (self.queue is None or item.queue == self.queue)
            and (self.connection is None or item.connection == self.connection)
            and (self.delay is None or abs(item.delay - _seconds(self.delay)) < 1.0)
            and (self.where is None or bool(self.where(job)))
        )


class Assertions:
    """Reads ``recorded()`` and ``recorded_batches()``; ``QueueFake`` provides them."""

    @property
    def registry(self) -> Registry:
        raise NotImplementedError

    def recorded(self) -> list[Recorded]:
        raise NotImplementedError

    def recorded_batches(self) -> list[RecordedBatch]:
        raise NotImplementedError

    # --- reading --------------------------------------------------------------------------------
    def _matching(self, check: _Filter) -> list[tuple[Recorded, Job]]:
        out = []
        for item in self.recorded():
            if item.job_name != check.cls.job_name:
                continue
            job = job_of(item.envelope, self.registry, check.cls)
            if job is not None and check.matches(item, job):
                out.append((item, job))
        return out

    def dispatched(self, cls: type[J], where: Callable[[J], bool] | None = None) -> list[J]:
        """The jobs of class ``cls`` dispatched so far (that pass ``where``), oldest first,
        decoded from what was stored: Laravel's ``Queue::pushed``."""
        found = self._matching(_Filter(cls, where))
        return [job for _, job in found if isinstance(job, cls)]

    def batches(self, where: Callable[[RecordedBatch], bool] | None = None) -> list[RecordedBatch]:
        return [b for b in self.recorded_batches() if where is None or where(b)]

    def _fail(self, headline: str) -> None:
        raise AssertionError(f"{headline}. {show_records(self.recorded(), self.registry)}")

    # --- jobs -----------------------------------------------------------------------------------
    def assert_dispatched(
        self,
        cls: type[J],
        where: Callable[[J], bool] | None = None,
        *,
        queue: str | None = None,
        connection: str | None = None,
        delay: float | timedelta | None = None,
    ) -> None:
        """At least one ``cls`` was dispatched (that passes ``where``, on that queue, ...)."""
        check = _Filter(cls, where, queue, connection, delay)
        if not self._matching(check):
            self._fail(f"{cls.__name__} was not dispatched{check.describe()}")

    def assert_dispatched_on(
        self, queue: str, cls: type[J], where: Callable[[J], bool] | None = None
    ) -> None:
        self.assert_dispatched(cls, where, queue=queue)

    def assert_dispatched_times(
        self, cls: type[J], times: int, where: Callable[[J], bool] | None = None
    ) -> None:
        check = _Filter(cls, where)
        found = len(self._matching(check))
        if found != times:
            self._fail(
                f"{cls.__name__} was dispatched {found} time{'s' * (found != 1)}"
                f"{check.describe()}, expected {times}"
            )

    def assert_not_dispatched(self, cls: type[J], where: Callable[[J], bool] | None = None) -> None:
        check = _Filter(cls, where)
        found = len(self._matching(check))
        if found:
            self._fail(
                f"{cls.__name__} was dispatched{check.describe()} {found} "
                f"time{'s' * (found != 1)}, expected none"
            )

    def assert_nothing_dispatched(self) -> None:
        if self.recorded():
            self._fail("Expected nothing dispatched")

    # --- chains ---------------------------------------------------------------------------------
    def assert_chained(self, links: Sequence[type[Job] | Job | type[PendingBatch]]) -> None:
        """A chain of these links was dispatched: each a job class, a job (compared field by
        field) or ``PendingBatch`` for a batch link."""
        for item in self.recorded():
            chain = [item.envelope, *(item.envelope.chain or ())]
            if len(chain) == len(links) and all(
                self._link_is(link, want) for link, want in zip(chain, links, strict=True)
            ):
                return
        wanted = " -> ".join(_show_wanted(want) for want in links)
        chains = [
            " -> ".join([show_job(i.envelope, self.registry)] + [
                show_link(link, self.registry) for link in i.envelope.chain or ()
            ])
            for i in self.recorded() if i.envelope.chain
        ]  # fmt: skip
        found = "; ".join(chains) if chains else "none"
        raise AssertionError(f"No chain {wanted} was dispatched. Chains dispatched: {found}")

    def _link_is(self, link: Envelope | dict[str, Any], want: object) -> bool:
        if isinstance(link, dict):
            if "batch" in link:
                return want is PendingBatch
            link = msgspec.convert(link["job"], Envelope)
        if isinstance(want, type) and issubclass(want, Job):
            return link.job == want.job_name
        if isinstance(want, Job):
            return (
                link.job == type(want).job_name and job_of(link, self.registry, type(want)) == want
            )
        return False

    # --- batches --------------------------------------------------------------------------------
    def assert_batched(self, where: Callable[[RecordedBatch], bool] | None = None) -> None:
        """A batch was dispatched (that passes ``where``, handed a ``RecordedBatch``)."""
        if not self.batches(where):
            self._fail_batches(f"No batch was dispatched{show_where(where)}")

    def assert_batch_count(self, count: int) -> None:
        found = len(self.recorded_batches())
        if found != count:
            self._fail_batches(f"{found} batch{'es' * (found != 1)} dispatched, expected {count}")

    def assert_nothing_batched(self) -> None:
        if self.recorded_batches():
            self._fail_batches("Expected no batch dispatched")

    def _fail_batches(self, headline: str) -> None:
        shown = "; ".join(_show_batch(b) for b in self.recorded_batches()) or "none"
        raise AssertionError(f"{headline}. Batches dispatched: {shown}")


def _show_wanted(want: object) -> str:
    if isinstance(want, type):
        return "batch" if want is PendingBatch else want.__name__
    if isinstance(want, Job):
        return show_fields(want)
    return repr(want)


def _show_batch(b: RecordedBatch) -> str:
    jobs = ", ".join(type(job).__name__ for job in b.jobs)
    return f"{b.name or b.id!r} of {b.total_jobs} job{'s' * (b.total_jobs != 1)} [{jobs}]"
