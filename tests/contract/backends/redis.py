"""Redis backend for the contract suite: each test gets its own key prefix, deleted after."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from conveyor.config import ConnectionSettings
from conveyor.drivers.base import Driver
from conveyor.drivers.redis import open_redis
from tests.servers import REDIS_URL, require_server


def require_redis(url: str = REDIS_URL) -> None:
    parts = urlsplit(url)
    require_server(url, parts.hostname or "127.0.0.1", parts.port or 6379)


def new_prefix() -> str:
    return f"conveyor-test-{uuid.uuid4().hex[:10]}"


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete the keys of one prefix: ``{prefix:queue}:...`` and ``{prefix}:...``, nothing else."""
    doomed = [
        k for k in client.scan_iter(match=f"{{{prefix}*", count=1000)
        if k.startswith((f"{{{prefix}:".encode(), f"{{{prefix}}}".encode()))
    ]  # fmt: skip
    pipe = client.pipeline(transaction=False)
    for key in doomed:
        pipe.delete(key)  # one key per command: a cluster node refuses DEL across slots
    pipe.execute()
    return len(doomed)


def open_driver(url: str, prefix: str, **settings: float) -> Driver:
    return open_redis(ConnectionSettings("contract", url, prefix=prefix, **settings))  # type: ignore[arg-type]


def make(tmp_path: Path, request: pytest.FixtureRequest) -> Driver:
    require_redis()
    prefix = new_prefix()

    def cleanup() -> None:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            delete_prefix(client, prefix)
        finally:
            client.close()

    request.addfinalizer(cleanup)
    return open_driver(REDIS_URL, prefix)
