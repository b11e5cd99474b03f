"""PgQueuer on PostgreSQL: ``pgq run adapters.pgqueuer_adapter:main`` (batch 10, no task limit).

Its tables are installed in the benchmark's own database on first use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from completion import io_sleep_async, noop
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from adapters.base import Adapter as Base
from adapters.base import broker_url, venv_bin


@asynccontextmanager
async def main(limit: int = 0) -> AsyncIterator[PgQueuer]:
    """The worker factory; ``limit`` 0 is PgQueuer's default (no per-entrypoint limit)."""
    conn = await asyncpg.connect(broker_url())
    pgq = PgQueuer(AsyncpgDriver(conn))

    @pgq.entrypoint("noop", concurrency_limit=limit)
    async def noop_job(job: Job) -> None:
        noop(float(job.payload or b"0"))

    @pgq.entrypoint("io", concurrency_limit=limit)
    async def io_job(job: Job) -> None:
        await io_sleep_async(float(job.payload or b"0"))

    try:
        yield pgq
    finally:
        await conn.close()


def main_one() -> Any:
    """One job at a time: PgQueuer's CLI wants max tasks >= 2 x batch, so limit per entrypoint."""
    return main(limit=1)


class Adapter(Base):
    name = "pgqueuer"
    backends = ("postgres",)
    is_async = True
    has_bulk = True
    default_concurrency = "asyncio, batch of 10, no concurrency limit"
    packages = ("pgqueuer", "asyncpg")

    def __init__(self, backend: str, url: str) -> None:
        super().__init__(backend, url)
        self.conn: Any = None
        self.queries: Any = None

    def worker_command(self, mode: str) -> list[str]:
        if mode == "one":
            return [venv_bin("pgq"), "run", f"{__name__}:main_one", "--batch-size", "1"]
        return [venv_bin("pgq"), "run", f"{__name__}:main"]

    async def _connect(self) -> None:
        if self.conn is None:
            self.conn = await asyncpg.connect(self.url)
            self.queries = Queries(AsyncpgDriver(self.conn))

    async def setup(self) -> None:
        await self._connect()
        if not await self.queries.has_table("pgqueuer"):
            await self.queries.install()

    async def reset(self) -> None:
        await self._connect()
        await self.queries.clear_queue()

    async def dispatch_one(self, kind: str, t: float) -> None:
        await self.queries.enqueue(kind, repr(t).encode())

    async def dispatch_bulk(self, kind: str, ts: list[float]) -> None:
        n = len(ts)
        await self.queries.enqueue([kind] * n, [repr(t).encode() for t in ts], [0] * n)

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
