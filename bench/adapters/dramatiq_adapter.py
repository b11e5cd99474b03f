"""Dramatiq on Redis: ``dramatiq adapters.dramatiq_adapter`` (processes = CPUs, 8 threads each)."""

from __future__ import annotations

from typing import Any

import dramatiq
from completion import io_sleep, noop
from dramatiq.brokers.redis import RedisBroker

from adapters.base import QUEUE, broker_url, venv_bin
from adapters.base import Adapter as Base

broker = RedisBroker(url=broker_url())
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_noop")
def noop_actor(t: float) -> None:
    noop(t)


@dramatiq.actor(queue_name=QUEUE, actor_name="bench_io")
def io_actor(t: float) -> None:
    io_sleep(t)


_ACTORS: dict[str, Any] = {"noop": noop_actor, "io": io_actor}


class Adapter(Base):
    name = "dramatiq"
    default_concurrency = "one process per CPU (2 here) x 8 threads"
    packages = ("dramatiq", "redis")

    def worker_command(self, mode: str) -> list[str]:
        cmd = [venv_bin("dramatiq"), "adapters.dramatiq_adapter", "--queues", QUEUE]
        return [*cmd, "--processes", "1", "--threads", "1"] if mode == "one" else cmd

    def dispatch_one(self, kind: str, t: float) -> None:
        _ACTORS[kind].send(t)
