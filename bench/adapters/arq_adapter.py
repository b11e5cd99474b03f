"""arq: ``arq adapters.arq_adapter.WorkerSettings`` (asyncio, max_jobs 10 by default)."""

from __future__ import annotations

from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from completion import io_sleep_async, noop

from adapters.base import Adapter as Base
from adapters.base import broker_url, venv_bin


async def noop_job(ctx: dict[str, Any], t: float) -> None:
    noop(t)


async def io_job(ctx: dict[str, Any], t: float) -> None:
    await io_sleep_async(t)


class WorkerSettings:
    functions = (noop_job, io_job)
    redis_settings = RedisSettings.from_dsn(broker_url())


class Adapter(Base):
    name = "arq"
    is_async = True
    default_concurrency = "asyncio, max_jobs 10, polls every 0.5 s"
    one_at_a_time = (
        "not run: with max_jobs=1 arq takes one job per 0.5 s poll (about 2 jobs/s measured "
        "on 100 jobs), so 10,000 jobs would take over an hour"
    )
    packages = ("arq", "redis")

    def __init__(self, backend: str, url: str) -> None:
        super().__init__(backend, url)
        self.pool: Any = None

    def worker_command(self, mode: str) -> list[str]:
        return [venv_bin("arq"), "adapters.arq_adapter.WorkerSettings"]

    async def setup(self) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(self.url))

    async def dispatch_one(self, kind: str, t: float) -> None:
        await self.pool.enqueue_job(f"{kind}_job", t)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()
