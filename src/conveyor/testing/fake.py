"""``QueueFake``: Laravel's ``Queue::fake()`` and ``Bus::fake()`` in one.

While it is on, every connection of the app is a recording driver (``recorder.FakeConnection``)
and every batch lives in an in-memory store beside it, so nothing reaches a queue and every way
of dispatching is seen, from any thread. ``only=`` / ``except_=`` fake some job classes and let
the rest through to the real connections. ``drain()`` then runs what was recorded, as a worker
would.

As a context manager, a decorator (of sync and async functions) or the ``conveyor_fake``
pytest fixture::

    with QueueFake() as fake:
        register_user("ada@example.com")
    fake.assert_dispatched(SendWelcomeEmail, lambda job: job.user_id == 1)
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar, cast

from ..app import Conveyor, current_app, set_app
from ..bus.stores import attach_store
from ..drivers import open_driver
from ..drivers.base import Driver, FailedRecord
from ..job import Job
from ..registry import Registry
from .assertions import Assertions, RecordedBatch
from .describe import job_of
from .drain import Drained, drain
from .memory_batches import MemoryBatchStore
from .recorder import FakeConnection, Recorded, Recorder

F = TypeVar("F", bound=Callable[..., Any])

#: the fakes on now, innermost last (``current_fake()``)
_active: list[QueueFake] = []
_active_lock = threading.Lock()


def current_fake() -> QueueFake:
    """The innermost fake on now: for code under a ``@QueueFake()`` decorator."""
    with _active_lock:
        if not _active:
            raise RuntimeError("no QueueFake is on: use it as `with QueueFake() as fake:`")
        return _active[-1]


class QueueFake(Assertions):
    def __init__(
        self,
        app: Conveyor | None = None,
        *,
        only: Iterable[type[Job]] = (),
        except_: Iterable[type[Job]] = (),
    ) -> None:
        self._app = app
        self._only = frozenset(cls.job_name for cls in only)
        self._except = frozenset(cls.job_name for cls in except_)
        if self._only and self._except:
            raise ValueError("QueueFake takes only= or except_=, not both")
        self._recorder = Recorder()
        self._connections: dict[str, FakeConnection] = {}
        self._stores: dict[str, MemoryBatchStore] = {}
        self._replaced: dict[str, Driver | None] = {}
        self._real: dict[str, Driver] = {}
        self._previous_app: Conveyor | None = None
        self._swapped_app = False
        self._on = False

    @property
    def app(self) -> Conveyor:
        if self._app is None:
            self._app = current_app()
        return self._app

    @property
    def registry(self) -> Registry:
        return self.app.registry

    def fakes(self, job_name: str) -> bool:
        """Whether jobs of this name are recorded (else they go to the real connection)."""
        if self._only:
            return job_name in self._only
        return job_name not in self._except

    # --- on and off -----------------------------------------------------------------------------
    def start(self) -> QueueFake:
        """Swap every connection of the app for a recording one (and make the app current)."""
        if self._on:
            raise RuntimeError("this QueueFake is on already")
        app = self.app
        self._recorder = Recorder()
        if app is not current_app():
            self._previous_app, self._swapped_app = set_app(app), True
        for name in app.settings.connections:
            fake = FakeConnection(name, self._recorder, self.fakes, self._real_driver(name))
            store = self._stores[name] = MemoryBatchStore(fake)
            attach_store(fake, store)
            self._connections[name] = fake
            self._replaced[name] = app.replace_driver(name, fake)
        self._on = True
        with _active_lock:
            _active.append(self)
        return self

    def stop(self) -> None:
        """Put the real connections back; what was recorded stays readable."""
        if not self._on:
            return
        with _active_lock:
            _active.remove(self)
        for name, previous in self._replaced.items():
            self.app.replace_driver(name, self._real.get(name) or previous)
        self._replaced.clear()
        if self._swapped_app:
            set_app(self._previous_app)
            self._swapped_app = False
        self._on = False

    def _real_driver(self, name: str) -> Callable[[], Driver]:
        """The real connection, for jobs not faked: the one the fake replaced, else opened on
        first use (and left to the app afterwards)."""

        def real() -> Driver:
            found = self._real.get(name) or self._replaced.get(name)
            if found is None:
                found = open_driver(self.app, self.app.settings.connection(name))
            self._real[name] = found
            return found

        return real

    def __enter__(self) -> QueueFake:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __call__(self, fn: F) -> F:
        """As a decorator: the fake is on (and fresh) for each call; ``current_fake()`` finds it."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return cast(F, run)

    # --- what was recorded ----------------------------------------------------------------------
    def recorded(self) -> list[Recorded]:
        return self._recorder.all()

    def recorded_batches(self) -> list[RecordedBatch]:
        out = []
        items = self.recorded()
        for name, store in self._stores.items():
            for record in reversed(store.page(limit=1_000_000)):
                options = record.options
                jobs = [
                    job for item in items
                    if item.envelope.batch_id == record.id and not item.envelope.batch_callback
                    and (job := job_of(item.envelope, self.app.registry)) is not None
                ]  # fmt: skip
                callbacks = {
                    event: [spec.get("fn") or spec["job"]["job"] for spec in options.get(event, ())]
                    for event in ("then", "catch", "finally")
                }
                out.append(
                    RecordedBatch(
                        id=record.id,
                        name=record.name,
                        connection=name,
                        queue=str(options.get("jobs_queue") or options.get("queue")),
                        total_jobs=record.total_jobs,
                        allows_failures=record.allow_failures,
                        jobs=jobs,
                        callbacks=callbacks,
                    )
                )
        return out

    def failed(self) -> list[FailedRecord]:
        """The failed-store records of every fake connection (jobs ``drain()`` failed)."""
        return [r for c in self._connections.values() for r in c.failed.page(limit=1_000_000)]

    def drain(self, *, max_runs: int = 10_000) -> Drained:
        """Run every recorded job, oldest first, as a worker would, until none is left."""
        return drain(self._recorder, self._connections, self.app.executor(), max_runs)

    def __repr__(self) -> str:
        state = "on" if self._on else "off"
        return f"<QueueFake {state}: {len(self.recorded())} dispatched>"
