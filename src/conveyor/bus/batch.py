"""``batch([...])``: fan-out with a summary, as Laravel's ``Bus::batch``.

``dispatch()`` stores the batch and all its jobs in one write and returns a ``Batch`` at once.
Each job's outcome updates the counters in the same atomic step that acknowledges or fails it,
and the step that makes an event happen (every job succeeded: ``then``; the first failure:
``catch``; every job ran: ``finally``) enqueues its callbacks with it, exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from .. import envelope as envelope_mod
from ..dispatch import PendingDispatch
from ..drivers.base import Message
from ..errors import ConveyorError
from ..job import Job, provide_find_batch
from ..queues import check_queue_name
from .batch_store import BatchRecord, BatchStore
from .chain import PendingChain
from .firing import Prepared, start
from .links import Target, callback_spec, envelope_of, job_envelope
from .links import own_connection as _own_connection
from .stores import store_for

if TYPE_CHECKING:
    from ..app import Conveyor

Item = Job | PendingDispatch | PendingChain | Sequence[Job | PendingDispatch]
MAX_NAME = 191


class PendingBatch:
    """Built by ``batch([...])``; nothing is stored until ``dispatch()``."""

    def __init__(self, jobs: Iterable[Item]) -> None:
        self.jobs = list(jobs)
        self._callbacks: dict[str, list[object]] = {"then": [], "catch": [], "finally": []}
        self._name = ""
        self._allow_failures = False
        self._queue: str | None = None
        self._connection: str | None = None
        self._app: Conveyor | None = None

    def then(self, callback: Any) -> PendingBatch:
        """Runs once when every job has succeeded: ``callback(batch)``."""
        self._callbacks["then"].append(callback)
        return self

    def catch(self, callback: Any) -> PendingBatch:
        """Runs once, on the first failure: ``callback(batch, JobFailure)``."""
        self._callbacks["catch"].append(callback)
        return self

    def finally_(self, callback: Any) -> PendingBatch:
        """Runs once when every job has run, succeeded or not: ``callback(batch)``."""
        self._callbacks["finally"].append(callback)
        return self

    def allow_failures(self, allow: bool = True) -> PendingBatch:
        """Keep going after a failure (by default the first failure cancels the batch)."""
        self._allow_failures = allow
        return self

    def name(self, name: str) -> PendingBatch:
        if len(name) > MAX_NAME:
            raise ConveyorError(f"batch name is {len(name)} characters; at most {MAX_NAME}")
        self._name = name
        return self

    def on_queue(self, name: str) -> PendingBatch:
        """Run every job, and the callbacks, on this queue."""
        self._queue = check_queue_name(name)
        return self

    def on_connection(self, name: str) -> PendingBatch:
        self._connection = name
        return self

    def using(self, app: Conveyor) -> PendingBatch:
        self._app = app
        return self

    def add(self, jobs: Iterable[Item]) -> PendingBatch:
        self.jobs.extend(jobs)
        return self

    def prepare(self, target: Target, forced: bool) -> Prepared:
        """Encode the batch for a target: the chain's, when it is a chain's link."""
        if self._connection is not None and self._connection != target.connection:
            raise ConveyorError(
                f"this batch runs on {self._connection!r} but its chain on "
                f"{target.connection!r}: a chain and its batches share one connection"
            )
        own = Target(target.app, target.connection, self._queue or target.queue)
        batch_id = envelope_mod.new_job_id()
        options = {
            "queue": own.callback_queue(), "connection": own.connection, "jobs_queue": own.queue,
            **{event: [callback_spec(cb, f"batch().{event}()", own) for cb in cbs]
               for event, cbs in self._callbacks.items()},
        }  # fmt: skip
        prepared = Prepared(batch_id, self._name, self._allow_failures, options)
        for env, delay, links in heads(self.jobs, own, forced or bool(self._connection), batch_id):
            prepared.heads.append((env, delay))
            prepared.total += links
        return prepared

    def dispatch(self) -> Batch:
        """Store the batch and every job in one write; returns the ``Batch`` at once."""
        from ..app import current_app

        app = self._app or current_app()
        named = next((c for c in map(_own_connection, self.jobs) if c), None)
        connection = self._connection or named or app.settings.default
        target = Target(app, connection, None)
        store = store_for(app.driver(connection))
        prepared = self.prepare(target, self._connection is not None)
        record, _ = start(store, prepared, max_payload=app.settings.max_payload)
        return Batch(record, app, connection)


def heads(
    items: Iterable[Item], target: Target, forced: bool, batch_id: str
) -> Iterable[tuple[envelope_mod.Envelope, float, int]]:
    """For each job or chain of a batch: its first envelope, its delay and its job count."""
    for item in items:
        if isinstance(item, Job | PendingDispatch):
            env, delay = job_envelope(item, target, forced)
            yield msgspec.structs.replace(env, batch_id=batch_id), delay, 1
            continue
        if isinstance(item, list | tuple):
            item = PendingChain(item)
        if not isinstance(item, PendingChain):
            raise ConveyorError(
                f"batch() takes jobs, job.delay(...)/on_queue(...) and chains (a list of jobs "
                f"or chain([...])), got {item!r}"
            )
        own = Target(target.app, target.connection, item._queue or target.queue)
        links, catch = item.encode(own, forced, batch_id)
        env = msgspec.structs.replace(
            envelope_of(links[0]), chain=links[1:] or None, chain_catch=catch or None
        )
        yield env, float(links[0].get("delay", 0.0)), len(links)


def _when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


class Batch:
    """A batch as last read from its connection; ``fresh()`` reads it again."""

    def __init__(self, record: BatchRecord, app: Conveyor, connection: str) -> None:
        self._record = record
        self._app = app
        self.connection = connection

    def _store(self) -> BatchStore:
        return store_for(self._app.driver(self.connection))

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def total_jobs(self) -> int:
        return self._record.total_jobs

    @property
    def pending_jobs(self) -> int:
        """Jobs not yet succeeded, failed ones included (as in Laravel)."""
        return self._record.pending_jobs

    @property
    def failed_jobs(self) -> int:
        """Jobs failed now; retrying one takes it back."""
        return self._record.failed_jobs

    @property
    def failed_job_ids(self) -> list[str]:
        return list(self._record.failed_job_ids)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self._record.options)

    @property
    def processed_jobs(self) -> int:
        """Jobs that succeeded (or were skipped because the batch was cancelled)."""
        return self._record.total_jobs - self._record.pending_jobs

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self._record.created_at, UTC)

    @property
    def finished_at(self) -> datetime | None:
        return _when(self._record.finished_at)

    @property
    def cancelled_at(self) -> datetime | None:
        return _when(self._record.cancelled_at)

    def progress(self) -> int:
        """Percent of jobs processed, rounded down: 100 only once every job has succeeded."""
        total = self._record.total_jobs
        return 100 if total == 0 else self.processed_jobs * 100 // total

    def finished(self) -> bool:
        """Every job has run once (the moment ``finally`` fired), successes or not."""
        return self._record.finished_at is not None

    def cancelled(self) -> bool:
        return self._record.cancelled_at is not None

    def has_failures(self) -> bool:
        return self._record.failed_jobs > 0

    def allows_failures(self) -> bool:
        return self._record.allow_failures

    def cancel(self) -> None:
        """Jobs not yet started skip their work; ``finally`` still fires once they all ran."""
        self._store().cancel(self.id)
        self._refresh()

    def add(self, jobs: Iterable[Item]) -> Batch:
        """Add jobs (e.g. from inside one of its jobs); refused once the batch is finished."""
        options = self._record.options
        target = Target(self._app, self.connection, options.get("jobs_queue"))
        messages, count = [], 0
        for env, delay, links in heads(jobs, target, True, self.id):
            messages.append(Message(env.id, env.queue, envelope_mod.encode(env), delay))
            count += links
        if messages and not self._store().add(self.id, messages, count):
            raise ConveyorError(f"batch {self.id} is finished (or gone): no job can be added")
        return self._refresh()

    def fresh(self) -> Batch:
        record = self._store().find(self.id)
        if record is None:
            raise ConveyorError(f"batch {self.id} no longer exists (pruned or deleted?)")
        return Batch(record, self._app, self.connection)

    def _refresh(self) -> Batch:
        self._record = self.fresh()._record
        return self

    def delete(self) -> bool:
        return self._store().delete(self.id)

    def to_dict(self) -> dict[str, Any]:
        """The status fields, JSON-ready (what a progress endpoint returns)."""
        return {
            "id": self.id, "name": self.name, "progress": self.progress(),
            "total_jobs": self.total_jobs, "pending_jobs": self.pending_jobs,
            "processed_jobs": self.processed_jobs, "failed_jobs": self.failed_jobs,
            "failed_job_ids": self.failed_job_ids, "finished": self.finished(),
            "cancelled": self.cancelled(), "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }  # fmt: skip

    def __repr__(self) -> str:
        return (
            f"<Batch {self.id} {self.name!r} {self.processed_jobs}/{self.total_jobs}"
            f" failed={self.failed_jobs}{' cancelled' if self.cancelled() else ''}"
            f"{' finished' if self.finished() else ''}>"
        )


def batch(jobs: Iterable[Item]) -> PendingBatch:
    """``batch([ImportRow(line=1), ...]).then(done).allow_failures().dispatch()``."""
    return PendingBatch(jobs)


def find_batch(
    batch_id: str, *, connection: str | None = None, app: Conveyor | None = None
) -> Batch | None:
    """The batch with this id on a connection (the default one if not named), or None."""
    from ..app import current_app

    app = app or current_app()
    name = connection or app.settings.default
    record = store_for(app.driver(name)).find(batch_id)
    return None if record is None else Batch(record, app, name)


provide_find_batch(lambda batch_id, connection: find_batch(batch_id, connection=connection))
