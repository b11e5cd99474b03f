"""Which batch store lives beside a connection's jobs: one per driver object.

Apart from ``batch_store`` (the contract the stores implement) so that the stores and the
contract do not import each other. The Redis store is imported only for a Redis connection, so
that SQL users need not install the Redis client; the SQL one only for a SQL connection.
"""

from __future__ import annotations

import weakref
from typing import Any

from ..drivers.base import Driver
from ..drivers.sync import SyncDriver
from ..errors import ConveyorError
from .batch_store import BatchStore


def require_storage(driver: Driver) -> None:
    """Refuse the sync connection: it runs a job at dispatch, so no link could wait its turn."""
    if isinstance(driver, SyncDriver):
        raise ConveyorError(
            f"connection {driver.connection!r} runs each job when it is dispatched and stores "
            "nothing, so it cannot hold a chain or a batch; dispatch it on a connection that "
            "stores jobs (sqlite, postgresql, mysql)"
        )


#: one store per driver object: the Redis store caches each batch's (immutable) options
_stores: weakref.WeakKeyDictionary[Any, BatchStore] = weakref.WeakKeyDictionary()


def store_for(driver: Driver) -> BatchStore:
    """The batch store that lives beside a connection's jobs."""
    found = _stores.get(driver)
    if found is None:
        found = _stores[driver] = _open_store(driver)
    return found


def attach_store(driver: Driver, store: BatchStore) -> None:
    """Give a driver that keeps its jobs elsewhere (the recording fake of ``conveyor.testing``)
    the store its batches live in, for as long as the driver lives."""
    _stores[driver] = store


def _open_store(driver: Driver) -> BatchStore:
    from ..drivers.database.driver import DatabaseDriver

    if isinstance(driver, DatabaseDriver):
        from .sql_batch_store import SQLBatchStore

        return SQLBatchStore(driver)
    if type(driver).__name__ == "RedisDriver":
        from ..drivers.redis.driver import RedisDriver
        from .redis_batch_store import RedisBatchStore

        assert isinstance(driver, RedisDriver)
        return RedisBatchStore(driver)
    require_storage(driver)
    raise ConveyorError(
        f"connection {driver.connection!r} ({type(driver).__name__}) has no batch store yet; "
        "chains with a catch and batches run on sqlite, postgresql, mysql and redis connections"
    )
