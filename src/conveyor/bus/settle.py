"""Where the worker meets the bus: settling chained and batched jobs, skipping the jobs of a
cancelled batch, and putting a failed batch job back.

The worker calls these with the envelope it already holds; a plain job (no chain, no batch)
costs one substring test and nothing else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .. import envelope as envelope_mod
from ..drivers.base import Driver, FailedRecord, Reservation
from ..envelope import Envelope
from ..errors import ConveyorError, PayloadError
from ..worker.outcome import Kind, Outcome
from .batch_store import Settlement, store_for
from .firing import Failure, callback_message, event_messages
from .links import link_message

log = logging.getLogger("conveyor.bus")


def bus_settlement(
    driver: Driver, reservation: Reservation, outcome: Outcome
) -> Callable[[], bool] | None:
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
) -> Callable[[], bool] | None:
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
        if member is None and not catch:
            return lambda: reservation.fail(record)
        settlement = Settlement(
            member, record=record, on_failure=catch, dropped=_members(env) if member else 0
        )
    else:
        chain = env.chain or []
        successors = (link_message(chain[0], chain[1:], env.chain_catch),) if chain else ()
        if member is None:
            return lambda: reservation.ack(successors)
        settlement = Settlement(member, successors=successors)
    store = store_for(driver)
    return lambda: store.settle(reservation, settlement, event_messages)


def batch_cancelled(batch_id: str, connection: str) -> bool:
    """Checked before a batch job runs: a cancelled batch's jobs skip their work."""
    from ..app import current_app

    try:
        return store_for(current_app().driver(connection)).cancelled(batch_id)
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
