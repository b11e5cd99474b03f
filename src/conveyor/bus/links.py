"""What ``chain()`` and ``batch()`` store: links (encoded envelopes) and callback specs.

Everything is resolved and encoded at ``dispatch()``, so an argument that cannot travel or a
callback a worker could not find raises at the call site, not in a worker hours later. A link is
``{"job": <envelope>, "delay": s}`` or ``{"batch": <batch spec>}``; a callback spec is
``{"fn": "module:qualname"}`` or ``{"job": <envelope>}``.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .. import envelope as envelope_mod
from ..dispatch import PendingDispatch, build_envelope
from ..drivers.base import Message
from ..envelope import Envelope
from ..errors import ConveyorError, PayloadTooLarge
from ..job import Job

if TYPE_CHECKING:
    from ..app import Conveyor

Link = dict[str, Any]
CallbackSpec = dict[str, Any]

#: names of the internal jobs that run callbacks and start a batch reached by a chain
RUN_CALLBACK_JOB = "conveyor.bus:RunCallback"
START_BATCH_JOB = "conveyor.bus:StartBatch"

_HOW = (
    "Callbacks run later in a worker, so they must survive serialization: pass a function "
    "defined at the top level of an importable module (def on_done(batch): ...) or a Job "
    "instance (NotifyAdmin(to='ops@example.com'))"
)


class Target:
    """Where the links of one chain or batch go: one connection (hand-overs are atomic only
    within one backend) and, when the chain or batch says so, one queue for all."""

    def __init__(self, app: Conveyor, connection: str, queue: str | None) -> None:
        self.app = app
        self.connection = connection
        self.queue = queue
        self.default_queue = app.settings.connection(connection).queue

    def callback_queue(self) -> str:
        return self.queue or self.default_queue


def unpack(item: Job | PendingDispatch) -> tuple[Job, str | None, str | None, float]:
    """A job and the options its ``PendingDispatch`` carries: queue, connection, delay."""
    if isinstance(item, PendingDispatch):
        return item.job, item._queue, item._connection, item._delay
    return item, None, None, 0.0


def own_connection(item: object) -> str | None:
    """The connection a link names itself, if any (to pick the chain's connection)."""
    if isinstance(item, Job | PendingDispatch):
        job, _, connection, _ = unpack(item)
        return connection or type(job).connection
    return None


def job_envelope(
    item: Job | PendingDispatch, target: Target, forced: bool
) -> tuple[Envelope, float]:
    """Build a link's envelope on the target's connection.

    ``forced`` (the chain or batch named its connection) overrides the job's own, as Laravel's
    ``allOnConnection`` does; otherwise a job naming another connection is refused.
    """
    job, queue, connection, delay = unpack(item)
    name = type(job).job_name
    wanted = connection or type(job).connection
    if wanted and wanted != target.connection and not forced:
        raise ConveyorError(
            f"{name} runs on connection {wanted!r} but this chain or batch runs on "
            f"{target.connection!r}: all its jobs share one connection (call "
            ".on_connection(...) on the chain or batch to move them all)"
        )
    env, _ = build_envelope(
        job, queue=target.queue or queue, connection=target.connection,
        default_queue=target.default_queue, max_payload=target.app.settings.max_payload,
    )  # fmt: skip
    return env, delay


def encode(env: Envelope, max_payload: int) -> bytes:
    payload = envelope_mod.encode(env)
    if len(payload) > max_payload:
        raise PayloadTooLarge(
            env.job, None,
            f"with its chain the payload is {len(payload)} bytes, over the {max_payload}-byte "
            "limit (max_payload); pass ids instead of data, or split the chain",
        )  # fmt: skip
    return payload


def job_link(env: Envelope, delay: float) -> Link:
    return {"job": msgspec.to_builtins(env), "delay": delay}


def envelope_of(link: Link) -> Envelope:
    return msgspec.convert(link["job"], Envelope)


def link_message(link: Link, rest: Sequence[Link], catch: Sequence[CallbackSpec] | None) -> Message:
    """The message that runs ``link`` next, carrying the rest of the chain and its catch."""
    if "batch" in link:
        spec = link["batch"]
        args = {"spec": spec, "chain": list(rest), "catch": list(catch or ())}
        env = Envelope(
            id=envelope_mod.new_job_id(), job=START_BATCH_JOB, args=args, queue=spec["queue"],
            connection=spec["connection"], dispatched_at=time.time(),
        )  # fmt: skip
        return Message(env.id, env.queue, envelope_mod.encode(env))
    env = msgspec.structs.replace(
        envelope_of(link), chain=list(rest) or None, chain_catch=list(catch or ()) or None,
        dispatched_at=time.time(),
    )  # fmt: skip
    return Message(env.id, env.queue, envelope_mod.encode(env), float(link.get("delay", 0.0)))


def callback_spec(callback: object, where: str, target: Target) -> CallbackSpec:
    """Check a callback now, at dispatch, and turn it into something a worker can run."""
    if isinstance(callback, Job | PendingDispatch):
        env, _ = job_envelope(callback, target, forced=True)
        return {"job": msgspec.to_builtins(env)}
    if isinstance(callback, type) and issubclass(callback, Job):
        raise ConveyorError(
            f"{where}: got the class {callback.__qualname__}; pass an instance, "
            f"{callback.__qualname__}(...), with the fields it needs"
        )
    return {"fn": function_target(callback, where)}


def function_target(fn: object, where: str) -> str:
    """``module:qualname`` of a module-level function, or an error saying what to pass instead."""
    why = not_storable(fn)
    if why is None:
        assert isinstance(fn, types.FunctionType)
        module, qualname = fn.__module__, fn.__qualname__
        if lookup(f"{module}:{qualname}") is fn:
            return f"{module}:{qualname}"
        why = f"{module}.{qualname} cannot be found again by importing {module!r}"
    raise ConveyorError(f"{where}: cannot store {_describe(fn)} as a callback: {why}. {_HOW}.")


def not_storable(fn: object) -> str | None:
    if isinstance(fn, types.MethodType):
        return "it is a bound method, tied to an object that cannot be stored"
    if not isinstance(fn, types.FunctionType):
        return "only plain functions and Job instances can be stored"
    if fn.__name__ == "<lambda>":
        return "it is a lambda, which has no importable name"
    if "<locals>" in fn.__qualname__:
        return "it is defined inside another function (a closure), so no worker can import it"
    if fn.__module__ == "__main__":
        return "it is defined in the script being run (__main__), which a worker cannot import"
    return None


def _describe(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{name!s} ({type(fn).__name__})"


def lookup(target: str) -> Any:
    """What ``module:qualname`` names in a module already loaded, or None: a function of the
    module, or one defined in a class of it (a static method). Nothing is imported, and the
    walk never leaves the module: every step is a class or function the module itself defines,
    so ``click:utils.os.makedirs`` names nothing, though ``click.utils`` imports ``os``."""
    module_name, _, qualname = target.partition(":")
    found: Any = sys.modules.get(module_name)
    if found is None or not qualname:
        return None
    for part in qualname.split("."):
        found = getattr(found, part, None) if isinstance(found, type | types.ModuleType) else None
        if not isinstance(found, type | types.FunctionType):
            return None
        if getattr(found, "__module__", None) != module_name:
            return None
    return found if getattr(found, "__qualname__", None) == qualname else None
