"""The job body every library runs, and the completion signal the harness reads.

Every job, whatever the library, ends with one Redis ``RPUSH`` of ``"<dispatched> <started>"``
to a list in a Redis database that only the benchmark uses (``BENCH_SIGNAL_URL``, database 15 by
default). The harness reads that list to know when the N-th job finished and to compute
dispatch-to-start latency, so no library is timed by its own (unequal) result backend. The cost
is one loopback round trip per job (about 0.05-0.1 ms), paid equally by every library.

This module runs inside every library's virtual environment: it needs only redis-py.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import redis

SIGNAL_URL_ENV = "BENCH_SIGNAL_URL"
DONE_KEY = "bench:done"
IO_SECONDS = 0.010

_client: Any = None
_client_pid = 0


def _redis() -> Any:
    """One client per process: forked workers must not share the parent's socket."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        _client = redis.Redis.from_url(os.environ[SIGNAL_URL_ENV])
        _client_pid = os.getpid()
    return _client


def record(dispatched: float, started: float | None = None) -> None:
    """Signal one completion; ``started`` is when the job body began (now if not given)."""
    begun = time.time() if started is None else started
    _redis().rpush(DONE_KEY, f"{dispatched!r} {begun!r}")


def noop(t: float) -> None:
    record(t)


def io_sleep(t: float) -> None:
    started = time.time()
    time.sleep(IO_SECONDS)
    record(t, started)


async def noop_async(t: float) -> None:
    record(t)


async def io_sleep_async(t: float) -> None:
    started = time.time()
    await asyncio.sleep(IO_SECONDS)
    record(t, started)
