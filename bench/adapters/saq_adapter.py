"""SAQ on Redis: ``saq adapters.saq_adapter.settings`` (asyncio, concurrency 10 by default)."""

from __future__ import annotations

from typing import Any

from completion import io_sleep_async, noop
from saq import Queue

from adapters.base import QUEUE, broker_url, venv_bin
from adapters.base import Adapter as Base


async def noop_job(ctx: dict[str, Any], *, t: float) -> None:
    noop(t)


async def io_job(ctx: dict[str, Any], *, t: float) -> None:
    await io_sleep_async(t)


queue = Queue.from_url(broker_url(), name=QUEUE)
settings = {"queue": queue, "functions": [noop_job, io_job]}
settings_one = {**settings, "concurrency": 1}


class Adapter(Base):
    name = "saq"
    is_async = True
    default_concurrency = "asyncio, concurrency 10"
    packages = ("saq", "redis")

    def worker_command(self, mode: str) -> list[str]:
        name = "settings_one" if mode == "one" else "settings"
        return [venv_bin("saq"), f"adapters.saq_adapter.{name}"]

    async def setup(self) -> None:
        await queue.connect()

    async def dispatch_one(self, kind: str, t: float) -> None:
        await queue.enqueue(f"{kind}_job", t=t)

    async def close(self) -> None:
        await queue.disconnect()
