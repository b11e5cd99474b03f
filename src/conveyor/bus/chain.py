"""``chain([...])``: jobs that run one after another, each only once the previous one succeeded.

Only the first link is stored at dispatch; it carries the rest of the chain in its envelope. When
a link succeeds, the worker hands the next one over in the same atomic step that acknowledges it
(``Reservation.ack(successors)``), so a worker killed at any point dispatches the next link
exactly once. When a link fails for good, the rest never runs and the chain's ``catch``
callbacks are stored with its failed record, in one step as well.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from ..dispatch import PendingDispatch, When, delay_seconds
from ..drivers.base import Message
from ..errors import ConveyorError, PayloadTooLarge
from ..job import Job
from ..queues import check_queue_name
from .firing import Prepared, start
from .links import CallbackSpec, Link, Target, callback_spec, job_envelope, job_link, link_message
from .links import own_connection as _own_connection
from .stores import require_storage, store_for

if TYPE_CHECKING:
    from ..app import Conveyor
    from .batch import PendingBatch


class PendingChain:
    """Built by ``chain([...])``; nothing is stored until ``dispatch()``."""

    def __init__(self, links: Iterable[Job | PendingDispatch | PendingBatch]) -> None:
        self.links = list(links)
        self._catch: list[object] = []
        self._queue: str | None = None
        self._connection: str | None = None
        self._delay = 0.0
        self._app: Conveyor | None = None

    def catch(self, callback: Any) -> PendingChain:
        """Called once, with a ``JobFailure``, if a link fails for good."""
        self._catch.append(callback)
        return self

    def on_queue(self, name: str) -> PendingChain:
        """Run every link on this queue (Laravel's ``allOnQueue``)."""
        self._queue = check_queue_name(name)
        return self

    def on_connection(self, name: str) -> PendingChain:
        """Run every link on this connection (Laravel's ``allOnConnection``)."""
        self._connection = name
        return self

    def delay(self, when: When | timedelta) -> PendingChain:
        """Delay the first link; later links start when their predecessor is done."""
        self._delay = delay_seconds(when)
        return self

    def using(self, app: Conveyor) -> PendingChain:
        self._app = app
        return self

    def target(self, app: Conveyor | None = None) -> tuple[Target, bool]:
        from ..app import current_app

        app = app or self._app or current_app()
        named = next((c for c in map(_own_connection, self.links) if c), None)
        connection = self._connection or named or app.settings.default
        return Target(app, connection, self._queue), self._connection is not None

    def encode(
        self, target: Target, forced: bool, batch_id: str | None = None
    ) -> tuple[list[Link], list[CallbackSpec]]:
        """Every link encoded now (errors surface here), and the catch callbacks checked."""
        if not self.links:
            raise ConveyorError("chain() needs at least one job")
        links = [_link(item, target, forced, batch_id) for item in self.links]
        catch = [callback_spec(cb, "chain().catch()", target) for cb in self._catch]
        return links, catch

    def dispatch(self) -> str:
        """Store the first link; returns its job id (or the batch id if it is a batch)."""
        target, forced = self.target()
        links, catch = self.encode(target, forced)
        driver = target.app.driver(target.connection)
        require_storage(driver)
        if catch:
            store_for(driver)  # a catch is stored with the failure: the backend must have a store
        first = links[0]
        if "batch" in first:
            prepared = Prepared.from_spec(first["batch"])
            start(store_for(driver), prepared, links[1:], catch, continued=True)
            return prepared.id
        message = link_message(first, links[1:], catch)
        if self._delay:
            message = msgspec.structs.replace(message, delay=self._delay)
        _check_size(message, first, target.app.settings.max_payload)
        driver.push(message)
        return message.id


def _link(item: object, target: Target, forced: bool, batch_id: str | None) -> Link:
    if isinstance(item, Job | PendingDispatch):
        env, delay = job_envelope(item, target, forced)
        if batch_id is not None:
            env = msgspec.structs.replace(env, batch_id=batch_id)
        return job_link(env, delay)
    prepare = getattr(item, "prepare", None)
    if prepare is not None:
        if batch_id is not None:
            raise ConveyorError("a batch cannot hold a chain that holds a batch")
        prepared: Prepared = prepare(target, forced)
        return {"batch": prepared.spec()}
    raise ConveyorError(
        f"chain() takes jobs, job.delay(...)/on_queue(...) and batch(...), got {item!r}"
    )


def _check_size(message: Message, first: Link, max_payload: int) -> None:
    if len(message.payload) > max_payload:
        raise PayloadTooLarge(
            first["job"]["job"], None,
            f"with the rest of its chain the first link's payload is {len(message.payload)} "
            f"bytes, over the {max_payload}-byte limit (max_payload); pass ids, not data",
        )  # fmt: skip


def chain(links: Iterable[Job | PendingDispatch | PendingBatch]) -> PendingChain:
    """``chain([ProcessOrder(id=1), SendInvoice(id=1)]).catch(on_failure).dispatch()``."""
    return PendingChain(links)
