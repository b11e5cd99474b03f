"""RQ: ``rq worker``, which forks a work horse for every job (its default worker class)."""

from __future__ import annotations

from completion import io_sleep, noop
from redis import Redis
from rq import Queue

from adapters.base import QUEUE, venv_bin
from adapters.base import Adapter as Base

_FUNCS = {"noop": noop, "io": io_sleep}


class Adapter(Base):
    name = "rq"
    has_bulk = True
    default_concurrency = "one job at a time, a forked work horse per job"
    packages = ("rq", "redis")
    max_n = 2000

    def __init__(self, backend: str, url: str) -> None:
        super().__init__(backend, url)
        self.queue = Queue(QUEUE, connection=Redis.from_url(url)) if url else None

    def worker_command(self, mode: str) -> list[str]:
        return [venv_bin("rq"), "worker", "--url", self.url or "redis://", QUEUE]

    def dispatch_one(self, kind: str, t: float) -> None:
        assert self.queue is not None
        self.queue.enqueue(_FUNCS[kind], t)

    def dispatch_bulk(self, kind: str, ts: list[float]) -> None:
        assert self.queue is not None
        func = _FUNCS[kind]
        self.queue.enqueue_many([Queue.prepare_data(func, args=(t,)) for t in ts])
