"""Conveyor, on every backend whose driver is present in this checkout and whose server answers.

The worker is ``conveyor --app adapters.conveyor_adapter work`` with the connection given as
``CONVEYOR_CONNECTION=<url>``, exactly as a user starts it, plus ``BENCH_CONVEYOR_ARGS`` (to
compare one setting A/B). No-op jobs are plain ``handle()``; the I/O job is ``async def handle``
(what the issue's I/O target compares).
"""

from __future__ import annotations

import importlib
import os
import subprocess
from pathlib import Path
from typing import Any

from completion import io_sleep_async, noop

from adapters.base import QUEUE, broker_url, venv_bin
from adapters.base import Adapter as Base
from conveyor import Conveyor, Job, dispatch_many, load_settings, set_app

_DRIVER_MODULES = {
    "sqlite": "conveyor.drivers.database.sqlite",
    "redis": "conveyor.drivers.redis",
    "postgres": "conveyor.drivers.database.postgres",
    "mysql": "conveyor.drivers.database.mysql",
}


class Noop(Job):
    queue = QUEUE
    t: float

    def handle(self) -> None:
        noop(self.t)


class IoSleep(Job):
    queue = QUEUE
    t: float

    async def handle(self) -> None:
        await io_sleep_async(self.t)


_KINDS: dict[str, type[Job]] = {"noop": Noop, "io": IoSleep}


def _has_concurrency_option() -> bool:
    """``--concurrency`` arrived after this benchmark: older checkouts run one job at a time."""
    out = subprocess.run(
        [venv_bin("conveyor"), "work", "--help"], capture_output=True, text=True, check=False
    )
    return "--concurrency" in out.stdout


class Adapter(Base):
    name = "conveyor"
    backends = ("sqlite", "redis", "postgres", "mysql")
    has_bulk = True
    default_concurrency = (
        "1 executor child process (prefork): sync jobs one at a time, async jobs 100 at once"
    )
    packages = ("conveyor", "redis", "psycopg", "PyMySQL")

    def __init__(self, backend: str, url: str) -> None:
        super().__init__(backend, url)
        self._app: Conveyor | None = None

    @property
    def app(self) -> Conveyor:
        if self._app is None:
            env = {**os.environ, "CONVEYOR_CONNECTION": broker_url()}
            self._app = Conveyor(load_settings(env=env))
            set_app(self._app)
        return self._app

    def worker_command(self, mode: str) -> list[str]:
        cmd = [venv_bin("conveyor"), "--app", "adapters.conveyor_adapter", "work"]
        cmd += ["--queue", QUEUE]
        if mode == "one" and _has_concurrency_option():
            cmd += ["--concurrency", "1"]
        return cmd + os.environ.get("BENCH_CONVEYOR_ARGS", "").split()

    def available_backends(self) -> dict[str, str]:
        found = {}
        for backend, module in _DRIVER_MODULES.items():
            try:
                importlib.import_module(module)
            except ImportError as exc:
                found[backend] = f"driver {module} not importable in this checkout ({exc})"
            else:
                found[backend] = ""
        return found

    def reset(self) -> None:
        if self.backend == "sqlite":
            path = Path(self.url[len("sqlite:///") :])
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        if self.backend == "redis":
            super().reset()
            return
        self.app.driver().clear(QUEUE)

    def setup(self) -> None:
        self.app.driver()

    def dispatch_one(self, kind: str, t: float) -> None:
        _KINDS[kind](t=t).dispatch()

    def dispatch_bulk(self, kind: str, ts: list[float]) -> None:
        cls = _KINDS[kind]
        dispatch_many([cls(t=t) for t in ts])

    def close(self) -> Any:
        if self._app is not None:
            self._app.close()
