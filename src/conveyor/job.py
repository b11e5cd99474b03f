"""Job base class and the ``@job`` decorator: they only declare, nothing runs at import time."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, dataclass_transform

from .context import JobContext
from .errors import ConveyorError

if TYPE_CHECKING:
    from .bus.batch import Batch
    from .dispatch import PendingDispatch

Backoff = float | Sequence[float]
RetryUntil = datetime | timedelta

RESERVED_NAMES = frozenset(
    {
        "handle", "failed", "dispatch", "delay", "on_queue", "on_connection", "attempts",
        "release", "delete", "fail", "job_id", "middleware", "queue", "connection", "tries",
        "timeout", "backoff", "retry_until", "max_exceptions", "fail_on_timeout", "job_name",
        "batch", "async_handle",
    }
)  # fmt: skip

#: what a job's own methods reach in the layers above this module, which import it: the class
#: of ``job.dispatch()`` (``dispatch.PendingDispatch``) and the lookup of ``job.batch()``
#: (``bus.batch.find_batch``). Each module hands its own in when it is imported, and
#: ``conveyor/__init__`` imports both, so they are there before any job is dispatched or run.
_pending_class: type[PendingDispatch] | None = None
_find_batch: Callable[[str, str], Batch | None] | None = None


def provide_pending_class(cls: type[PendingDispatch]) -> None:
    global _pending_class
    _pending_class = cls


def provide_find_batch(find: Callable[[str, str], Batch | None]) -> None:
    global _find_batch
    _find_batch = find


def _missing(what: str) -> ConveyorError:
    return ConveyorError(f"{what} is not loaded: import conveyor before using its jobs")


@dataclass_transform(kw_only_default=True)
class Job:
    """Subclass with annotated fields and ``handle()``; subclasses become keyword-only dataclasses.

    Policy is plain class attributes (no annotation), so it never becomes a field:

        class SendWelcomeEmail(Job):
            user_id: int
            tries = 3
            backoff = [10, 30]

            def handle(self) -> None: ...
    """

    queue: ClassVar[str | None] = None
    connection: ClassVar[str | None] = None
    tries: ClassVar[int | None] = None
    timeout: ClassVar[float | None] = None
    backoff: ClassVar[Backoff | Callable[..., Backoff] | None] = None
    retry_until: ClassVar[RetryUntil | Callable[..., RetryUntil] | None] = None
    max_exceptions: ClassVar[int | None] = None
    fail_on_timeout: ClassVar[bool] = False
    job_name: ClassVar[str] = ""
    #: ``handle`` is a coroutine function: such jobs may share the executor (``--concurrency``)
    async_handle: ClassVar[bool] = False

    _context: JobContext | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "job_name" not in cls.__dict__:
            cls.job_name = f"{cls.__module__}:{cls.__qualname__}"
        cls.async_handle = inspect.iscoroutinefunction(cls.handle)
        dataclasses.dataclass(kw_only=True, eq=True, repr=True)(cls)
        _check_policy(cls)
        clashes = RESERVED_NAMES.intersection(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        if clashes:
            raise ConveyorError(
                f"{cls.__qualname__}: field name(s) {sorted(clashes)} are reserved by Job;"
                " rename them"
            )

    def handle(self) -> Any:
        raise NotImplementedError(f"{type(self).__qualname__} must define handle()")

    def failed(self, exc: BaseException) -> Any:
        """Called once when the job fails for good; override (sync or async) to clean up."""

    def middleware(self) -> Sequence[Any]:
        return ()

    # --- inside a running job -------------------------------------------------------------
    def _ctx(self) -> JobContext:
        if self._context is None:
            raise ConveyorError(f"{type(self).__qualname__} is not running inside a worker")
        return self._context

    @property
    def job_id(self) -> str | None:
        return self._context.job_id if self._context else None

    def attempts(self) -> int:
        return self._context.attempts if self._context else 0

    def release(self, delay: float = 0) -> None:
        self._ctx().release(delay)

    def delete(self) -> None:
        self._ctx().delete()

    def fail(self, exc: BaseException | str | None = None) -> None:
        self._ctx().fail(exc)

    def batch(self) -> Batch | None:
        """The batch this job runs in, read fresh from its connection; None outside a batch."""
        ctx = self._context
        if ctx is None or ctx.batch_id is None:
            return None
        if _find_batch is None:
            raise _missing("conveyor.bus")
        return _find_batch(ctx.batch_id, ctx.connection)

    # --- dispatching ----------------------------------------------------------------------
    def pending(self) -> PendingDispatch:
        if _pending_class is None:
            raise _missing("conveyor.dispatch")
        return _pending_class(self)

    def dispatch(self) -> str:
        return self.pending().dispatch()

    def delay(self, when: float | timedelta | datetime) -> PendingDispatch:
        return self.pending().delay(when)

    def on_queue(self, name: str) -> PendingDispatch:
        return self.pending().on_queue(name)

    def on_connection(self, name: str) -> PendingDispatch:
        return self.pending().on_connection(name)


def _check_policy(cls: type[Job]) -> None:
    """Refuse, where the class is defined, a policy a worker would refuse in its payload."""
    for name in ("tries", "max_exceptions"):
        value = getattr(cls, name)
        if value is not None and (type(value) is not int or value < 0):
            raise ConveyorError(
                f"{cls.__qualname__}.{name} must be a whole number >= 0, got {value!r}"
            )
    timeout = cls.timeout
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 <= timeout <= 1e10  # NaN fails this too
    ):
        raise ConveyorError(f"{cls.__qualname__}.timeout must be seconds >= 0, got {timeout!r}")


J = TypeVar("J", bound=Job)
F = TypeVar("F", bound=Callable[..., Any])

_POLICY = ("queue", "connection", "tries", "timeout", "backoff", "retry_until",
           "max_exceptions", "fail_on_timeout")  # fmt: skip


def job(fn: Callable[..., Any] | None = None, **policy: Any) -> Any:
    """Turn a plain function into a Job class whose fields are the function's parameters.

    ``@job(tries=3)`` over ``def send(user_id: int)`` gives a class: ``send(user_id=1).dispatch()``.
    The class replaces the function in its module, so the worker finds it by the same name.
    """
    unknown = set(policy) - set(_POLICY)
    if unknown:
        raise ConveyorError(f"@job: unknown option(s) {sorted(unknown)}; allowed: {list(_POLICY)}")

    def wrap(func: Callable[..., Any]) -> type[Job]:
        return _function_job(func, policy)

    return wrap(fn) if fn is not None else wrap


def _function_job(func: Callable[..., Any], policy: dict[str, Any]) -> type[Job]:
    sig = inspect.signature(func)
    hints = inspect.get_annotations(func, eval_str=True)
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": func.__module__, "__doc__": func.__doc__}
    for name, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConveyorError(f"@job {func.__qualname__}: *args/**kwargs cannot be job fields")
        annotations[name] = hints.get(name, Any)
        if param.default is not param.empty:
            namespace[name] = param.default
    namespace["__annotations__"] = annotations
    namespace.update(policy)
    is_async = inspect.iscoroutinefunction(func)

    if is_async:

        async def handle_async(self: Job) -> Any:
            return await func(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})  # type: ignore[arg-type]

        namespace["handle"] = handle_async
    else:

        def handle(self: Job) -> Any:
            return func(**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)})  # type: ignore[arg-type]

        namespace["handle"] = handle
    namespace["fn"] = staticmethod(func)
    cls = type(func.__name__, (Job,), {**namespace, "__qualname__": func.__qualname__})
    return cls
