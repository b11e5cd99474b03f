"""PostgreSQL backend for the contract suite: each test gets its own schema, dropped after."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from conveyor.config import ConnectionSettings
from conveyor.drivers.base import Driver
from conveyor.drivers.database.postgres import open_postgres
from tests.servers import POSTGRES_URL, require_server


def require_postgres(url: str = POSTGRES_URL) -> None:
    parts = urlsplit(url)
    require_server(url, parts.hostname or "127.0.0.1", parts.port or 5432)


def schema_url(schema: str, base: str = POSTGRES_URL, **options: str) -> str:
    """``base`` with ``?schema=`` (and more options) added: the driver then lives there."""
    query = "&".join(f"{k}={v}" for k, v in {"schema": schema, **options}.items())
    return f"{base}{'&' if '?' in base else '?'}{query}"


def new_schema() -> str:
    return f"conveyor_test_{uuid.uuid4().hex[:10]}"


def drop_schema(schema: str, base: str = POSTGRES_URL) -> None:
    """Drop only the schema this test made (the driver creates it on first use)."""
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def make(tmp_path: Path, request: pytest.FixtureRequest) -> Driver:
    require_postgres()
    schema = new_schema()
    request.addfinalizer(lambda: drop_schema(schema))
    return open_postgres(ConnectionSettings("contract", schema_url(schema)))
