"""``Conveyor``: wires settings, connections, the job registry and the event bus.

Nothing here happens at import time. Application code either builds its own ``Conveyor`` and
passes it around, or uses the default one that ``current_app()`` builds lazily from the config
files and environment on first use.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable

from . import forks
from .config import Settings, load_settings
from .drivers import open_driver
from .drivers.base import Driver
from .errors import ConfigError
from .events import EventBus
from .registry import Registry
from .worker.executor import Executor, WorkerDefaults


class Conveyor:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        registry: Registry | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.registry = registry or Registry(self.settings.app)
        self.events = events or EventBus()
        self._drivers: dict[str, Driver] = {}
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        self._fork = forks.generation()

    def driver(self, name: str | None = None) -> Driver:
        """The driver of a connection, opened once per process (never shared across a fork)."""
        if self._fork != forks.generation():
            self._drivers.clear()
            self._fork = forks.generation()
        key = name or self.settings.default
        found = self._drivers.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._drivers.get(key)
            if found is None:
                found = open_driver(self, self.settings.connection(key))
                self._drivers[key] = found
            return found

    def replace_driver(self, name: str, driver: Driver | None) -> Driver | None:
        """Put ``driver`` in place of a connection's (None: open the real one again on next use);
        returns the one it replaced, if any. ``conveyor.testing``'s fake swaps itself in here, so
        that every way of dispatching, from any thread, reaches it."""
        with self._lock:
            previous = self._drivers.pop(name, None)
            if driver is not None:
                self._drivers[name] = driver
            return previous

    def executor(self, defaults: WorkerDefaults | None = None) -> Executor:
        if defaults is not None:
            return Executor(self.registry, self.events, defaults)
        if self._executor is None:
            self._executor = Executor(self.registry, self.events, WorkerDefaults())
        return self._executor

    def import_app_modules(self, modules: Iterable[str] = ()) -> None:
        """Import the modules that define the application's jobs, so the worker knows them."""
        for module in (*self.settings.app, *modules):
            self.registry.allow(module)
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ConfigError(f"cannot import app module {module!r}: {exc}") from None

    def close(self) -> None:
        for driver in self._drivers.values():
            driver.close()
        self._drivers.clear()


_current: Conveyor | None = None
_current_lock = threading.Lock()


def current_app() -> Conveyor:
    global _current
    if _current is not None:
        return _current
    with _current_lock:
        if _current is None:
            _current = Conveyor()
        return _current


def set_app(app: Conveyor | None) -> Conveyor | None:
    """Make ``app`` the default for ``dispatch()``; returns the previous one (tests restore it)."""
    global _current
    with _current_lock:
        previous, _current = _current, app
        return previous
