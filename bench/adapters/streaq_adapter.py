"""streaQ (Redis streams): ``streaq run adapters.streaq_adapter:worker`` (concurrency 16)."""

from __future__ import annotations

from typing import Any

from completion import io_sleep_async, noop
from streaq import Worker

from adapters.base import QUEUE, broker_url, venv_bin
from adapters.base import Adapter as Base


def _worker(**options: Any) -> tuple[Worker, dict[str, Any]]:
    """A worker with the bench tasks; ``one`` is the same tasks at concurrency 1."""
    found = Worker(redis_url=broker_url(), queue_name=QUEUE, **options)

    @found.task(name="noop")
    async def noop_task(t: float) -> None:
        noop(t)

    @found.task(name="io")
    async def io_task(t: float) -> None:
        await io_sleep_async(t)

    return found, {"noop": noop_task, "io": io_task}


worker, _TASKS = _worker()
worker_one, _ = _worker(concurrency=1)


class Adapter(Base):
    name = "streaq"
    is_async = True
    has_bulk = True
    default_concurrency = "asyncio, concurrency 16"
    packages = ("streaq", "coredis")

    def worker_command(self, mode: str) -> list[str]:
        name = "worker_one" if mode == "one" else "worker"
        return [venv_bin("streaq"), "run", f"adapters.streaq_adapter:{name}"]

    def __init__(self, backend: str, url: str) -> None:
        super().__init__(backend, url)
        self.entered = False

    async def setup(self) -> None:
        await worker.__aenter__()
        self.entered = True

    async def dispatch_one(self, kind: str, t: float) -> None:
        await _TASKS[kind].enqueue(t)

    async def dispatch_bulk(self, kind: str, ts: list[float]) -> None:
        await worker.enqueue_many([_TASKS[kind].enqueue(t) for t in ts])

    async def close(self) -> None:
        if self.entered:
            await worker.__aexit__(None, None, None)
