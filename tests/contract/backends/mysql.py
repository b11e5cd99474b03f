"""MariaDB/MySQL backend for the contract suite: each test gets its own database, dropped after."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pymysql
import pytest

from conveyor.config import ConnectionSettings
from conveyor.drivers.base import Driver
from conveyor.drivers.database.mysql import open_mysql, parse_url
from tests.servers import MYSQL_URL, require_server


def require_mysql(url: str = MYSQL_URL) -> None:
    parts = urlsplit(url)
    require_server(url, parts.hostname or "127.0.0.1", parts.port or 3306)


def admin(base: str = MYSQL_URL) -> pymysql.connections.Connection:
    opts = parse_url(base)
    return pymysql.connect(
        host=opts.host, port=opts.port, user=opts.user, password=opts.password,
        database=opts.database, unix_socket=opts.unix_socket, autocommit=True,
    )  # fmt: skip


def new_database(base: str = MYSQL_URL) -> str:
    """Create ``conveyor_test_<random>`` and return its name."""
    name = f"conveyor_test_{uuid.uuid4().hex[:10]}"
    with admin(base) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    return name


def database_url(name: str, base: str = MYSQL_URL, **options: str) -> str:
    parts = urlsplit(base)
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return urlunsplit(parts._replace(path=f"/{name}", query=query))


def drop_database(name: str, base: str = MYSQL_URL) -> None:
    with admin(base) as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def make(tmp_path: Path, request: pytest.FixtureRequest) -> Driver:
    require_mysql()
    name = new_database()
    request.addfinalizer(lambda: drop_database(name))
    return open_mysql(ConnectionSettings("contract", database_url(name)))
