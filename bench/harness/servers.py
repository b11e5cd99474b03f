"""The servers the benchmark talks to, which parts of them it owns, and the completion signal.

It owns Redis databases 13 (the queue of every Redis-backed library, flushed between
measurements) and 15 (the completion signal), and a database ``conveyor_bench`` on PostgreSQL
and MariaDB, created if missing and dropped at the end when this run created it. Nothing else
on those servers is touched.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis

BENCH_DB = "conveyor_bench"


@dataclass
class Servers:
    redis_url: str = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    signal_url: str = os.environ.get("BENCH_SIGNAL_URL", "redis://127.0.0.1:6379/15")
    postgres_admin: str = os.environ.get(
        "BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    mysql_admin: str = os.environ.get("BENCH_MYSQL_ADMIN_URL", "mysql://root@127.0.0.1:3306/")
    up: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def url(self, backend: str, sqlite_path: str) -> str:
        if backend == "redis":
            return self.redis_url
        if backend == "postgres":
            return _with_db(self.postgres_admin, BENCH_DB)
        if backend == "mysql":
            return _with_db(self.mysql_admin, BENCH_DB)
        return f"sqlite:///{sqlite_path}"

    def vacuum(self, backend: str) -> None:
        """Reclaim the rows the last measurement deleted, for every library alike.

        A queue table churns: without autovacuum (off on some servers, slow to start on others)
        dead rows pile up across repetitions and each run is slower than the one before.
        """
        if backend == "postgres":
            import psycopg

            with psycopg.connect(self.url("postgres", ""), autocommit=True) as conn:
                conn.execute("VACUUM")

    def probe(self) -> None:
        """Which servers answer, and their versions; a missing server is noted, not fatal."""
        self.up["sqlite"] = ""
        for backend, url in (
            ("redis", self.redis_url),
            ("postgres", self.postgres_admin),
            ("mysql", self.mysql_admin),
        ):
            parts = urlsplit(url)
            if not _port_open(parts.hostname or "127.0.0.1", parts.port or 0):
                self.up[backend] = f"no server at {parts.hostname}:{parts.port}"
                continue
            try:
                self.versions[backend] = _VERSION[backend](url)
                self.up[backend] = ""
            except Exception as exc:  # any client error means: skip this backend, say why
                self.up[backend] = f"{type(exc).__name__}: {exc}"
        import sqlite3

        self.versions["sqlite"] = f"SQLite {sqlite3.sqlite_version}"

    def create_databases(self) -> None:
        if not self.up.get("postgres") and _pg_create(self.postgres_admin):
            self.created.append("postgres")
        if not self.up.get("mysql") and _mysql_create(self.mysql_admin):
            self.created.append("mysql")

    def drop_databases(self) -> None:
        """Drop what this run created; the signal database is flushed as well."""
        if "postgres" in self.created:
            _pg_drop(self.postgres_admin)
        if "mysql" in self.created:
            _mysql_drop(self.mysql_admin)
        self.created.clear()
        for url in (self.redis_url, self.signal_url):
            if not self.up.get("redis"):
                redis.Redis.from_url(url).flushdb()


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/{name}").geturl()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _redis_version(url: str) -> str:
    return "Redis " + str(redis.Redis.from_url(url).info("server")["redis_version"])


def _pg_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


def _mysql_connect(url: str, database: str | None = None) -> object:
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=database,
        connect_timeout=3,
        autocommit=True,
    )


def _mysql_version(url: str) -> str:
    conn = _mysql_connect(url)
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute("SELECT VERSION()")
        (version,) = cur.fetchone()
    conn.close()  # type: ignore[attr-defined]
    return f"MariaDB/MySQL {version}"


_VERSION = {"redis": _redis_version, "postgres": _pg_version, "mysql": _mysql_version}


def _pg_create(admin: str) -> bool:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            return False
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return True


def _pg_drop(admin: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


def _mysql_create(admin: str) -> bool:
    conn = _mysql_connect(admin)
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        exists = cur.execute("SHOW DATABASES LIKE %s", (BENCH_DB,))
        if not exists:
            cur.execute(f"CREATE DATABASE {BENCH_DB}")
    conn.close()  # type: ignore[attr-defined]
    return not exists


def _mysql_drop(admin: str) -> None:
    conn = _mysql_connect(admin)
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    conn.close()  # type: ignore[attr-defined]


class Signal:
    """The completion list in the benchmark's own Redis database."""

    KEY = "bench:done"

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)

    def clear(self) -> None:
        self.client.delete(self.KEY)

    def count(self) -> int:
        return int(self.client.llen(self.KEY))

    def entries(self) -> list[tuple[float, float]]:
        """(dispatched, started) per completed job, in completion order."""
        raw = self.client.lrange(self.KEY, 0, -1)
        pairs = []
        for item in raw:
            dispatched, _, started = item.decode().partition(" ")
            pairs.append((float(dispatched), float(started)))
        return pairs

    def wait_for(self, n: int, alive: object, stall: float = 60.0, cap: float = 1800.0) -> int:
        """Poll until ``n`` completions; give up after ``stall`` s without progress or ``cap`` s.

        ``alive`` is a callable telling whether the worker still runs: a dead worker ends the
        wait at once instead of after the stall timeout.
        """
        started = last_change = time.monotonic()
        seen = -1
        while True:
            count = self.count()
            now = time.monotonic()
            if count >= n:
                return count
            if count != seen:
                seen, last_change = count, now
            if now - last_change > stall or now - started > cap:
                return count
            if callable(alive) and not alive():
                return self.count()
            time.sleep(0.01 if n - count < 50 else 0.05)


def exclusive(results: str) -> object:
    """One benchmark at a time: two runs would empty each other's queues and signal list.

    Returns the open lock file, which must stay referenced for the life of the run.
    """
    os.makedirs(results, exist_ok=True)
    handle = open(os.path.join(results, ".lock"), "a+")  # noqa: SIM115 - held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        sys.exit(f"another benchmark is running (pid {handle.read().strip() or '?'}); "
                 "it owns Redis databases 13 and 15 until it ends")  # fmt: skip
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
