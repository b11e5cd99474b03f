"""The Redis backend (single server, Sentinel or Cluster): see ``docs/backends.md``."""

from __future__ import annotations

from ...config import ConnectionSettings
from ..base import Driver
from .connection import RedisConnection, parse_url
from .driver import RedisDriver

__all__ = ["RedisDriver", "open_redis"]


def open_redis(settings: ConnectionSettings) -> Driver:
    """Open a connection's Redis driver; nothing is sent to the server until first use."""
    target = parse_url(settings.url)
    describe = f"Redis connection {settings.name!r} ({settings.masked_url()})"
    conn = RedisConnection(target, describe)
    return RedisDriver(settings.name, conn, prefix=settings.prefix, block_for=settings.block_for)
