"""Celery on Redis: ``celery -A adapters.celery_adapter worker``, results ignored."""

from __future__ import annotations

from typing import Any

from celery import Celery
from completion import io_sleep, noop

from adapters.base import QUEUE, broker_url, venv_bin
from adapters.base import Adapter as Base

app = Celery("bench", broker=broker_url())
app.conf.update(
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop_task(t: float) -> None:
    noop(t)


@app.task(name="bench.io")
def io_task(t: float) -> None:
    io_sleep(t)


_TASKS: dict[str, Any] = {"noop": noop_task, "io": io_task}


class Adapter(Base):
    name = "celery"
    default_concurrency = "prefork pool, one child per CPU (2 here), prefetch 4 per child"
    packages = ("celery", "kombu", "redis")

    def worker_command(self, mode: str) -> list[str]:
        cmd = [venv_bin("celery"), "-A", "adapters.celery_adapter", "worker", "-Q", QUEUE]
        return [*cmd, "--concurrency", "1"] if mode == "one" else cmd

    def setup(self) -> None:
        app.connection_for_write().ensure_connection(max_retries=3)

    def dispatch_one(self, kind: str, t: float) -> None:
        _TASKS[kind].delay(t)
