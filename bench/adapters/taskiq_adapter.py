"""taskiq with taskiq-redis's ``RedisStreamBroker`` (acknowledged), no result backend.

Worker: ``taskiq worker adapters.taskiq_adapter:broker`` (2 processes, 100 async tasks each).
"""

from __future__ import annotations

from typing import Any

from completion import io_sleep_async, noop
from taskiq_redis import RedisStreamBroker

from adapters.base import QUEUE, broker_url, venv_bin
from adapters.base import Adapter as Base

broker = RedisStreamBroker(url=broker_url(), queue_name=QUEUE)


@broker.task(task_name="noop")
async def noop_task(t: float) -> None:
    noop(t)


@broker.task(task_name="io")
async def io_task(t: float) -> None:
    await io_sleep_async(t)


_TASKS: dict[str, Any] = {"noop": noop_task, "io": io_task}


class Adapter(Base):
    name = "taskiq"
    is_async = True
    default_concurrency = "2 worker processes x 100 async tasks"
    packages = ("taskiq", "taskiq-redis", "redis")

    def worker_command(self, mode: str) -> list[str]:
        cmd = [venv_bin("taskiq"), "worker", "adapters.taskiq_adapter:broker"]
        return [*cmd, "--workers", "1", "--max-async-tasks", "1"] if mode == "one" else cmd

    async def setup(self) -> None:
        await broker.startup()

    async def dispatch_one(self, kind: str, t: float) -> None:
        await _TASKS[kind].kiq(t)

    async def close(self) -> None:
        await broker.shutdown()
