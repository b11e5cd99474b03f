"""``IsolatedQueue``: a real queue of its own for one test, for integration tests of user code.

Every connection of the project's settings (but ``sync``) is moved to a private place: an SQLite
file in the test's folder by default; with a server URL, a key prefix of its own on Redis or a
schema of its own on PostgreSQL, removed afterwards (and nothing else on the server touched).
The app made on it is the current one while the queue is on, so code under test dispatches
into it, and ``work()`` runs a real worker over it until it is empty.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path
from typing import Any

from ..app import Conveyor, set_app
from ..config import ConnectionSettings, Settings, load_settings
from ..drivers.base import FailedRecord, QueueSize
from ..drivers.database.driver import DatabaseDriver
from ..errors import ConfigError
from ..worker.executor import WorkerDefaults
from ..worker.loop import Worker, WorkerOptions
from ..worker.process import InlineRunner


def _identifier(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


class IsolatedQueue:
    def __init__(self, folder: Path, url: str | None = None, base: Settings | None = None) -> None:
        """``base``: the settings to isolate (the project's, read from the working directory,
        by default); ``url``: a Redis or PostgreSQL server to isolate them on instead of SQLite."""
        base = base or load_settings()
        self.tag = uuid.uuid4().hex[:10]
        self.folder = folder
        self._server = url
        connections = {name: self._moved(c) for name, c in base.connections.items()}
        self.settings = dataclasses.replace(base, connections=connections)
        self.app = Conveyor(self.settings)
        self._previous: Conveyor | None = None

    def _moved(self, c: ConnectionSettings) -> ConnectionSettings:
        if c.scheme == "sync":
            return c
        url, prefix = self._server, c.prefix
        if url is None:
            url = f"sqlite:///{self.folder / (_identifier(c.name) + '.db')}"
        elif url.partition("://")[0].partition("+")[0] in ("redis", "rediss"):
            prefix = f"conveyor-test-{self.tag}-{c.name}"
        elif url.partition("://")[0] in ("postgresql", "postgres"):
            schema = f"conveyor_test_{self.tag}_{_identifier(c.name)}"
            url += f"{'&' if '?' in url else '?'}schema={schema}"
        else:
            raise ConfigError(
                f"an isolated queue lives in an SQLite file, a Redis prefix or a PostgreSQL "
                f"schema of its own; {url.partition('://')[0]!r} is none of these"
            )
        return dataclasses.replace(c, url=url, prefix=prefix)

    def start(self) -> IsolatedQueue:
        self._previous = set_app(self.app)
        return self

    def stop(self) -> None:
        """Make the previous app current again and remove what the queue stored."""
        set_app(self._previous)
        try:
            if self._server is not None:
                for name in self.settings.connections:
                    self._remove(name)
        finally:
            self.app.close()

    def _remove(self, name: str) -> None:
        settings = self.settings.connection(name)
        if settings.scheme == "sync":
            return
        driver: Any = self.app.driver(name)
        if isinstance(driver, DatabaseDriver):
            schema = settings.url.rpartition("schema=")[2]
            driver.run(lambda cur: cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            return
        client = driver.conn.client
        doomed = [
            key for key in client.scan_iter(match=f"{{{settings.prefix}*", count=1000)
            if key.startswith((f"{{{settings.prefix}:".encode(), f"{{{settings.prefix}}}".encode()))
        ]  # fmt: skip
        for key in doomed:
            client.delete(key)

    def __enter__(self) -> IsolatedQueue:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def work(self, *queues: str, connection: str | None = None, max_jobs: int = 0) -> int:
        """Run a real worker in this process over ``queues`` (the connection's default queue if
        none) until they are empty; returns how many jobs it processed. Delayed jobs wait."""
        name = connection or self.settings.default
        options = WorkerOptions(
            queues=queues or (self.settings.connection(name).queue,), stop_when_empty=True,
            lease=30.0, max_jobs=max_jobs, sleep=0.05,
        )  # fmt: skip
        worker = Worker(
            self.app.driver(name), InlineRunner(self.app.executor()), self.app.events,
            WorkerDefaults(), options,
        )  # fmt: skip
        worker.run()
        return worker.processed

    def size(self, queue: str | None = None, connection: str | None = None) -> QueueSize:
        name = connection or self.settings.default
        return self.app.driver(name).size(queue or self.settings.connection(name).queue)

    def failed(self, connection: str | None = None) -> list[FailedRecord]:
        return self.app.driver(connection).failed.page(limit=1_000_000)
