"""``drain()``: run what a ``QueueFake`` recorded, as a worker would, until nothing is left.

Each job runs through the real executor and is settled the way the worker settles it: a chained
or batched job through ``bus_settlement`` (the chain's next link is recorded, then run; a
batch's counters move and its ``then`` / ``catch`` / ``finally`` callbacks are recorded, then
run), a released job runs again (at once: delays are not waited for) until its tries are
spent, and a failed job lands in its connection's failed store.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .. import envelope as envelope_mod
from ..bus.settle import batch_cancelled, bus_settlement
from ..drivers.base import FailedRecord
from ..errors import PayloadError
from ..worker.executor import Attempt, Executor
from ..worker.outcome import Kind
from .describe import short_name
from .recorder import Claim, FakeConnection, Recorded, Recorder, State
from .run import JobRun


@dataclass(frozen=True)
class Drained:
    """Every attempt ``drain()`` ran, in order."""

    runs: list[JobRun] = field(default_factory=list)

    def count(self, kind: str) -> int:
        """Attempts that ended so: ``completed``, ``released``, ``deleted`` or ``failed``."""
        return sum(1 for run in self.runs if getattr(run, kind))

    @property
    def failures(self) -> list[JobRun]:
        return [run for run in self.runs if run.failed]

    def assert_nothing_failed(self) -> None:
        if self.failures:
            shown = "; ".join(
                f"{short_name(run.job_name)}: {run.outcome.reason}" for run in self.failures
            )
            raise AssertionError(f"{len(self.failures)} job(s) failed while draining: {shown}")


def drain(
    recorder: Recorder,
    connections: Mapping[str, FakeConnection],
    executor: Executor,
    max_runs: int,
) -> Drained:
    runs: list[JobRun] = []
    while (item := recorder.take()) is not None:
        if len(runs) >= max_runs:
            raise AssertionError(
                f"drain() ran {max_runs} attempts and jobs are still pending (next: "
                f"{short_name(item.job_name)}): does a job dispatch itself for ever?"
            )
        runs.append(_run(item, connections[item.connection], executor))
    return Drained(runs)


def _run(item: Recorded, connection: FakeConnection, executor: Executor) -> JobRun:
    item.attempts += 1
    try:
        cancelled = batch_cancelled(connection, envelope_mod.decode(item.payload))
    except PayloadError:
        cancelled = False  # the executor fails it with the reason
    attempt = Attempt(item.id, item.queue, item.connection, item.payload, item.attempts, cancelled)
    outcome = executor.execute(attempt)
    exception = executor.last_exception if outcome.kind is not Kind.COMPLETED else None
    claim = Claim(connection, item)
    write = bus_settlement(connection, claim, outcome)
    if write is not None:
        write()
    elif outcome.kind is Kind.RELEASED:
        claim.release(outcome.delay, outcome.payload)
    elif outcome.kind is Kind.FAILED:
        claim.fail(
            FailedRecord(
                uuid=item.id,
                connection=item.connection,
                queue=item.queue,
                payload=item.payload,
                exception=outcome.error or outcome.reason,
                failed_at=time.time(),
            )
        )
    else:
        claim.ack()
    if outcome.kind is Kind.DISCARDED:
        item.state = State.DELETED
    return JobRun(item.job_name, item.id, item.attempts, outcome, exception)
