"""Where the worker meets the bus: settling chained and batched jobs, skipping the jobs of a
cancelled batch, and putting a failed batch job back.

The worker calls these with the envelope it already holds; a plain job (no chain, no batch)
costs one substring test and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from .. import envelope as envelope_mod
from ..drivers.base import Driver, FailedRecord, Reservation
from ..envelope import Envelope
from ..errors import ConveyorError, PayloadError
from ..worker.outcome import Kind, Outcome
from .batch_store import BatchStore, Settlement
from .firing import Failure, callback_message, event_messages
from .links import link_message
from .stores import store_for

log = logging.getLogger("conveyor.bus")


class BusWrite:
    """The write that settles a chained or batched job. Calling it settles; ``ack_and_reserve``
    (None where the store cannot) settles and claims the next job in the same transaction, as a
    plain acknowledgement does."""

    def __init__(
        self,
        settle: Callable[[], bool],
        combined: Callable[[Sequence[str], float], tuple[bool, Reservation | None]] | None = None,
    ) -> None:
        self._settle = settle
        self.ack_and_reserve = combined

    def __call__(self) -> bool:
        return self._settle()


def bus_settlement(driver: Driver, reservation: Reservation, outcome: Outcome) -> BusWrite | None:
    """The write that settles a chained or batched job, or None for a plain job."""
    if outcome.kind is Kind.RELEASED:
        return None
    payload = reservation.payload
    if b'"chain' not in payload and b'"batch_id"' not in payload:
        return None
    try:
        return _settlement(driver, reservation, outcome, envelope_mod.decode(payload))
    except (PayloadError, ConveyorError, ValueError, TypeError, KeyError, IndexError):
        log.exception(
            "job %s: its chain or batch is unreadable; settled as a plain job", reservation.id
        )
        return None


def _members(env: Envelope) -> int:
    """Links still ahead in the chain that belong to the same batch as this job."""
    return sum(1 for link in env.chain or () if link.get("job", {}).get("batch_id") == env.batch_id)


def _settlement(
    driver: Driver, reservation: Reservation, outcome: Outcome, env: Envelope
) -> BusWrite | None:
    member = env.batch_id if env.batch_id and not env.batch_callback else None
    if not env.chain and not env.chain_catch and member is None:
        return None
    if outcome.kind is Kind.FAILED:
        record = FailedRecord(
            uuid=reservation.id, connection=driver.connection, queue=reservation.queue,
            payload=reservation.payload, exception=outcome.error or outcome.reason,
            failed_at=time.time(),
        )  # fmt: skip
        failure = Failure(reservation.id, record.exception)
        where = {"queue": reservation.queue, "connection": driver.connection}
        catch = tuple(
            callback_message(spec, "chain_catch", batch_id=None, failure=failure, **where)
            for spec in env.chain_catch or ()
        )
        settlement = Settlement(
            member, record=record, on_failure=catch, dropped=_members(env) if member else 0
        )
    else:
        chain = env.chain or []
        successors = (link_message(chain[0], chain[1:], env.chain_catch),) if chain else ()
        settlement = Settlement(member, successors=successors)
    return _write(driver, reservation, settlement)


def _write(driver: Driver, reservation: Reservation, settlement: Settlement) -> BusWrite:
    """Through the batch store when it is needed or when it can claim the next job as well;
    through the driver's own ack / fail for a plain chain elsewhere (Redis Cluster too)."""
    try:
        store: BatchStore | None = store_for(driver)
    except ConveyorError:
        store = None
    combined = getattr(store, "settle_and_reserve", None)
    needs_store = settlement.batch_id is not None or bool(settlement.on_failure)
    if store is None or (combined is None and not needs_store):
        if needs_store:
            store_for(driver)  # raises: this backend cannot settle it exactly
        if settlement.record is None:
            return BusWrite(lambda: reservation.ack(settlement.successors))
        record = settlement.record
        return BusWrite(lambda: reservation.fail(record))
    found = store

    def both(queues: Sequence[str], lease: float) -> tuple[bool, Reservation | None]:
        assert combined is not None
        result: tuple[bool, Reservation | None] = combined(
            reservation, settlement, event_messages, queues, lease
        )
        return result

    return BusWrite(
        lambda: found.settle(reservation, settlement, event_messages),
        both if combined is not None else None,
    )


def batch_cancelled(driver: Driver, env: Envelope | None) -> bool:
    """Asked by the control process before it hands a job over: a cancelled batch's jobs skip
    their work. A job outside a batch (most jobs) costs one attribute test, no lookup."""
    if env is None or env.batch_id is None or env.batch_callback:
        return False
    batch_id = env.batch_id
    try:
        return store_for(driver).cancelled(batch_id)
    except Exception:
        log.warning("cannot tell whether batch %s was cancelled; running its job", batch_id)
        return False


def requeue_batched(driver: Driver, record: FailedRecord) -> bool:
    """``conveyor retry`` of a batch job: queue it again and take its failure back, at once."""
    if b'"batch_id"' not in record.payload:
        return False
    try:
        env = envelope_mod.decode(record.payload)
        if not env.batch_id or env.batch_callback:
            return False
        store = store_for(driver)
    except (PayloadError, ConveyorError):
        return False
    store.requeue(record, env.batch_id, _members(env))
    return True
