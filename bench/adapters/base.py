"""The interface every library's adapter implements.

An adapter module is imported in two places, both inside that library's own virtual
environment: by ``peer.py`` (the producer and set-up side) and by the library's own worker
command, which loads the tasks defined at module level. It reads its connection URL from
``BENCH_BROKER_URL``, which the harness sets for both. The harness itself never imports it.

Job kinds: ``noop`` (record the completion, nothing else) and ``io`` (sleep 10 ms, then record).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

BROKER_URL_ENV = "BENCH_BROKER_URL"
QUEUE = "bench"


def broker_url() -> str:
    return os.environ.get(BROKER_URL_ENV) or "redis://127.0.0.1:6379/13"


def venv_bin(name: str) -> str:
    """A console script of the library, from the environment this process runs in."""
    return str(Path(sys.executable).parent / name)


class Adapter:
    """Sync or async (``is_async``) set-up and dispatch calls for one library on one backend.

    Methods that touch the broker are coroutines when ``is_async`` is true; ``peer.py`` runs
    them in one event loop so that async libraries are timed at their natural speed.
    """

    name = ""
    backends: tuple[str, ...] = ("redis",)
    is_async = False
    has_bulk = False
    #: What the library does when started with no concurrency option (shown in the report).
    default_concurrency = ""
    #: Distribution names whose versions the report lists.
    packages: tuple[str, ...] = ()
    #: A cap on N for a library whose drain is bound per job (e.g. a fork per job), so that
    #: the full run stays within an hour; the report says when it applied.
    max_n: int | None = None
    #: Why the one-at-a-time drain is not run for this library ('' when it is).
    one_at_a_time = ""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url

    def worker_command(self, mode: str) -> list[str]:
        """The worker as a user would start it; ``mode`` is ``default`` or ``one``."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {
            "worker": {mode: self.worker_command(mode) for mode in ("default", "one")},
            "bulk": self.has_bulk,
            "default_concurrency": self.default_concurrency,
            "max_n": self.max_n,
            "one_at_a_time": self.one_at_a_time,
        }

    def available_backends(self) -> dict[str, str]:
        """Backends this adapter can run here, with a reason for each one it cannot."""
        return {backend: "" for backend in self.backends}

    def setup(self) -> Any:
        """Create what the library needs on the server (schema, tables)."""

    def reset(self) -> Any:
        """Empty the queue; the harness calls it before every measurement, with no worker up."""
        if self.backend == "redis":
            import redis

            redis.Redis.from_url(self.url).flushdb()

    def teardown(self) -> Any:
        """Remove what ``setup`` created."""

    def dispatch_one(self, kind: str, t: float) -> Any:
        raise NotImplementedError

    def dispatch_bulk(self, kind: str, ts: list[float]) -> Any:
        raise NotImplementedError

    def close(self) -> Any:
        """Release connections at the end of the producer process."""
