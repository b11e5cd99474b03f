"""procrastinate on PostgreSQL: ``procrastinate --app adapters.procrastinate_adapter.app worker``.

Its schema is applied to the benchmark's own database on first use.
"""

from __future__ import annotations

from typing import Any

from completion import io_sleep_async, noop
from procrastinate import App, PsycopgConnector

from adapters.base import QUEUE, broker_url, venv_bin
from adapters.base import Adapter as Base

app = App(connector=PsycopgConnector(conninfo=broker_url()))


@app.task(name="noop", queue=QUEUE)
def noop_task(t: float) -> None:
    noop(t)


@app.task(name="io", queue=QUEUE)
async def io_task(t: float) -> None:
    await io_sleep_async(t)


_TASKS: dict[str, Any] = {"noop": noop_task, "io": io_task}


class Adapter(Base):
    name = "procrastinate"
    backends = ("postgres",)
    is_async = True
    has_bulk = True
    default_concurrency = "1 job at a time (asyncio worker, sync tasks in a thread)"
    packages = ("procrastinate", "psycopg")

    def worker_command(self, mode: str) -> list[str]:
        cmd = [venv_bin("procrastinate"), "--app", "adapters.procrastinate_adapter.app"]
        return [*cmd, "worker", "--queues", QUEUE]

    async def setup(self) -> None:
        await app.open_async()
        async with app.connector.pool.connection() as conn:
            row = await (await conn.execute("SELECT to_regclass('procrastinate_jobs')")).fetchone()
        if row is None or row[0] is None:
            await app.schema_manager.apply_schema_async()

    async def reset(self) -> None:
        await app.open_async()
        async with app.connector.pool.connection() as conn:
            await conn.execute("TRUNCATE procrastinate_jobs RESTART IDENTITY CASCADE")

    async def dispatch_one(self, kind: str, t: float) -> None:
        await _TASKS[kind].defer_async(t=t)

    async def dispatch_bulk(self, kind: str, ts: list[float]) -> None:
        await _TASKS[kind].batch_defer_async(*({"t": t} for t in ts))

    async def close(self) -> None:
        await app.close_async()
