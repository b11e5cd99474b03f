"""What happens when a batch event fires, and how a batch is started from its prepared form.

Both are pure: they turn records and specs into messages, and the store writes those messages
in the same transaction as the outcome that fired them. Callbacks therefore run as ordinary jobs
(retried and failed like any other), each exactly once per event.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .. import envelope as envelope_mod
from ..drivers.base import Message
from ..envelope import Envelope
from ..errors import PayloadTooLarge
from .batch_store import EVENTS, BatchRecord, BatchStore, Settlement
from .links import RUN_CALLBACK_JOB, CallbackSpec, Link, link_message


@dataclass(frozen=True)
class Failure:
    """The job whose failure a catch callback reports."""

    job_id: str
    error: str


@dataclass
class Prepared:
    """A batch ready to store: its options and the first link of each of its jobs/chains."""

    id: str
    name: str
    allow_failures: bool
    options: dict[str, Any]
    heads: list[tuple[Envelope, float]] = field(default_factory=list)
    total: int = 0

    def messages(self, max_payload: int | None = None) -> list[Message]:
        out = []
        for env, delay in self.heads:
            payload = envelope_mod.encode(env)
            if max_payload is not None and len(payload) > max_payload:
                raise PayloadTooLarge(
                    env.job, None,
                    f"with its chain this batch job encodes to {len(payload)} bytes, over the "
                    f"{max_payload}-byte limit (max_payload); pass ids, not data",
                )  # fmt: skip
            out.append(Message(env.id, env.queue, payload, delay))
        return out

    def spec(self) -> dict[str, Any]:
        """The JSON form a chain carries until it reaches this batch."""
        return {
            "id": self.id, "name": self.name, "allow_failures": self.allow_failures,
            "options": self.options, "total": self.total,
            "queue": self.options["queue"], "connection": self.options["connection"],
            "heads": [[msgspec.to_builtins(env), delay] for env, delay in self.heads],
        }  # fmt: skip

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Prepared:
        heads = [(msgspec.convert(env, Envelope), float(delay)) for env, delay in spec["heads"]]
        return cls(
            spec["id"], spec["name"], bool(spec["allow_failures"]), dict(spec["options"]),
            heads, int(spec["total"]),
        )  # fmt: skip


def start(
    store: BatchStore,
    prepared: Prepared,
    chain: Sequence[Link] = (),
    catch: Sequence[CallbackSpec] = (),
    continued: bool = False,
    max_payload: int | None = None,
) -> tuple[BatchRecord, bool]:
    """Store the batch and its jobs in one write (False if that id exists already).

    ``continued``: the batch is a chain's link; when it finishes uncancelled the chain goes
    on with ``chain``, and when it was cancelled the chain's ``catch`` callbacks fire instead.
    An empty batch is finished at once, its then and finally firing in the same write.
    """
    options = dict(prepared.options)
    if continued:
        options["chain"] = {"next": list(chain), "catch": list(catch)}
    now = time.time()
    record = BatchRecord(
        id=prepared.id, name=prepared.name, total_jobs=prepared.total,
        pending_jobs=prepared.total, failed_jobs=0, allow_failures=prepared.allow_failures,
        options=options, created_at=now,
    )  # fmt: skip
    messages = prepared.messages(max_payload)
    if prepared.total == 0:
        fired = frozenset(("then", "finally"))
        record = dataclasses.replace(record, finished_at=now, fired=fired)
        messages = event_messages(record, fired, None)
    return record, store.create(record, messages)


def event_messages(
    record: BatchRecord, events: frozenset[str], settlement: Settlement | None
) -> list[Message]:
    """The callbacks of the events that just fired, then the chain's continuation if any."""
    options = record.options
    failure = None
    if settlement is not None and settlement.record is not None:
        failure = Failure(settlement.record.uuid, settlement.record.exception)
    where = {"queue": options["queue"], "connection": options["connection"]}
    out = []
    for event in EVENTS:
        if event in events:
            reported = failure if event == "catch" else None
            for spec in options.get(event, ()):
                out.append(
                    callback_message(spec, event, batch_id=record.id, failure=reported, **where)
                )
    chain = options.get("chain")
    if chain is not None and "finally" in events:
        out.extend(_continue_chain(record, chain, failure))
    return out


def _continue_chain(
    record: BatchRecord, chain: dict[str, Any], failure: Failure | None
) -> list[Message]:
    """After a batch that is a chain's link: the next link, or the chain's catch if cancelled."""
    links, catch = chain["next"], chain["catch"]
    if record.cancelled_at is None:
        return [link_message(links[0], links[1:], catch)] if links else []
    if failure is None and record.failed_job_ids:
        failure = Failure(record.failed_job_ids[0], "")
    where = {"queue": record.options["queue"], "connection": record.options["connection"]}
    return [
        callback_message(spec, "chain_catch", batch_id=record.id, failure=failure, **where)
        for spec in catch
    ]


def callback_message(
    spec: CallbackSpec,
    event: str,
    *,
    batch_id: str | None,
    failure: Failure | None,
    queue: str,
    connection: str,
) -> Message:
    """A job that runs one callback: ``RunCallback`` for a function, else the job itself."""
    now = time.time()
    if "fn" in spec:
        args = {"target": spec["fn"], "event": event, "batch_id": batch_id or ""}
        if failure is not None:
            args.update(failed_job=failure.job_id, error=failure.error)
        env = Envelope(
            id=envelope_mod.new_job_id(), job=RUN_CALLBACK_JOB, args=args, queue=queue,
            connection=connection, dispatched_at=now,
        )  # fmt: skip
    else:
        env = msgspec.structs.replace(
            msgspec.convert(spec["job"], Envelope), id=envelope_mod.new_job_id(),
            batch_id=batch_id if event != "chain_catch" else None,
            batch_callback=batch_id is not None and event != "chain_catch", dispatched_at=now,
        )  # fmt: skip
    return Message(env.id, env.queue, envelope_mod.encode(env))
