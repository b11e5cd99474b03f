"""Open the driver a connection's URL names; server drivers import their client lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import ConnectionSettings
from ..errors import ConfigError
from .base import Driver

if TYPE_CHECKING:
    from ..app import Conveyor


def open_driver(app: Conveyor, settings: ConnectionSettings) -> Driver:
    scheme = settings.scheme
    if scheme == "sync":
        from .sync import SyncDriver

        return SyncDriver(app, settings.name)
    if scheme == "sqlite":
        from .database.driver import DatabaseDriver
        from .database.sqlite import SQLiteDialect

        path = settings.url[len("sqlite:///") :]
        return DatabaseDriver(settings.name, SQLiteDialect(path), auto_migrate=True)
    if scheme.partition("+")[0] in ("redis", "rediss"):
        from .redis import open_redis

        return open_redis(settings)
    if scheme in ("postgresql", "postgres"):
        from .database.postgres import open_postgres

        return open_postgres(settings)
    if scheme in ("mysql", "mariadb"):
        from .database.mysql import open_mysql

        return open_mysql(settings)
    raise ConfigError(
        f"connection {settings.name!r}: the {scheme!r} driver is not available in this version"
    )
