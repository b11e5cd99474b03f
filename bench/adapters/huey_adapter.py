"""Huey on Redis: ``huey_consumer adapters.huey_adapter.huey`` (1 worker thread by default)."""

from __future__ import annotations

from typing import Any

from completion import io_sleep, noop
from huey import RedisHuey

from adapters.base import QUEUE, broker_url, venv_bin
from adapters.base import Adapter as Base

huey = RedisHuey(QUEUE, url=broker_url())


@huey.task(name="noop")
def noop_task(t: float) -> None:
    noop(t)


@huey.task(name="io")
def io_task(t: float) -> None:
    io_sleep(t)


_TASKS: dict[str, Any] = {"noop": noop_task, "io": io_task}


class Adapter(Base):
    name = "huey"
    default_concurrency = "1 worker thread"
    packages = ("huey", "redis")

    def worker_command(self, mode: str) -> list[str]:
        cmd = [venv_bin("huey_consumer"), "adapters.huey_adapter.huey"]
        return [*cmd, "--workers", "1"] if mode == "one" else cmd

    def dispatch_one(self, kind: str, t: float) -> None:
        _TASKS[kind](t)
