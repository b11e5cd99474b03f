"""What every command shares: the app from settings, exit codes, error reporting, tables."""

from __future__ import annotations

import functools
import logging
import logging.handlers
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from ..app import Conveyor, set_app
from ..config import load_settings
from ..errors import ConfigError, ConnectionUnavailable, ConveyorError, InvalidQueueName
from ..queues import check_queue_name
from .text import inert, plain

OK, NOT_FOUND, USAGE = 0, 1, 2
#: no ``:name:`` emoji codes: a queue called ``:fire:`` is shown as it is called
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)
F = TypeVar("F", bound=Callable[..., Any])


class FiniteFloat(click.FloatRange):
    """A ``FloatRange`` that refuses ``nan`` and the infinities.

    ``FloatRange`` lets ``nan`` through any bound (every comparison with it is false), and
    ``--sleep inf`` or ``--max-time inf`` are "never" spelled in a way nothing below expects.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


def queue_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback for a ``--queue`` naming one queue: the rule of ``conveyor.queues``."""
    if value is None:
        return None
    try:
        return check_queue_name(value)
    except InvalidQueueName as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def queues_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[str, ...] | None:
    """Click callback for a ``--queue Q1,Q2`` list; spaces around a comma are ignored."""
    if value is None:
        return None
    names = tuple(q.strip() for q in value.split(",") if q.strip())
    if not names:
        raise click.BadParameter("name at least one queue, e.g. --queue high,default", ctx, param)
    for name in names:
        queue_option(ctx, param, name)
    return names


class State:
    def __init__(self, app_modules: tuple[str, ...], verbose: int) -> None:
        self.app_modules: tuple[str, ...] = ()
        self.verbose = verbose
        self._app: Conveyor | None = None
        self.add_app_modules(app_modules)

    def add_app_modules(self, items: tuple[str, ...]) -> None:
        """Add ``--app`` values, each one module or a comma-separated list of them."""
        for item in items:
            self.app_modules += tuple(m.strip() for m in item.split(",") if m.strip())

    def app(self, import_modules: bool = True) -> Conveyor:
        if self._app is None:
            settings = load_settings().with_app(self.app_modules)
            self._app = Conveyor(settings)
            set_app(self._app)
            if import_modules:
                _cwd_on_path()
                self._app.import_app_modules()
        return self._app


def _cwd_on_path() -> None:
    """Put the working directory first on the import path, as Celery and RQ do.

    A console script's ``sys.path`` starts with the script's own folder (``.venv/bin``), not the
    folder it runs in, so ``conveyor --app jobs.send_welcome_email work`` run in the project
    would not find the project's ``jobs`` package that ``conveyor make-job`` just wrote there.
    """
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _app_modules(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    state = ctx.find_object(State)
    if state is not None:
        state.add_app_modules(value)


#: ``--app`` after the command name too (``conveyor work --app myapp.jobs``): the group's option
#: has run by then and made the State, which this one adds to
app_option = click.option(
    "--app",
    multiple=True,
    metavar="MODULE",
    expose_value=False,
    callback=_app_modules,
    help="Module that defines your jobs (repeatable), as the global --app: --app myapp.jobs",
)


def fail(message: str, code: int = USAGE) -> None:
    err_console.print(
        f"[red]error:[/] {inert(message, keep_newlines=True)}", highlight=False, soft_wrap=True
    )
    raise SystemExit(code)


def guarded(fn: F) -> F:
    """Turn Conveyor's errors into one clear line and an exit code scripts can use."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), USAGE)
        except ConnectionUnavailable as exc:
            fail(str(exc), NOT_FOUND)
        except ConveyorError as exc:
            fail(str(exc), USAGE)

    return wrapper  # type: ignore[return-value]


class _Formatter(logging.Formatter):
    """The standard format, with the date and time formatted once per second, not per line,
    and job names and errors (which come from the queue) made ``plain``."""

    _second = -1
    _stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        return plain(super().format(record), keep_newlines=True)


class _Burst(logging.handlers.MemoryHandler):
    """Hands its buffer to a stream in one write: the stream handler would write, and so make
    a system call, once per line."""

    def flush(self) -> None:
        target = self.target
        if not isinstance(target, logging.StreamHandler):
            super().flush()
            return
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            lines = []
            for record in self.buffer:
                if record.levelno >= target.level and target.filter(record):
                    try:
                        lines.append(target.format(record) + target.terminator)
                    except Exception:
                        target.handleError(record)
            if lines:
                try:
                    target.stream.write("".join(lines))
                    target.flush()
                except Exception:
                    target.handleError(self.buffer[-1])
            self.buffer.clear()


LOG_LEVELS = ("debug", "info", "warning", "error")


def setup_logging(verbose: int, level: str | None = None) -> None:
    """Log to stderr through a small buffer: one write per burst of lines, not per job.

    A busy worker logs a line per job, and a write per line costs as much as a quarter of the
    control process's time. Warnings go out at once; the worker flushes the rest whenever it
    waits (idle, or once a second during a long job), so a line is never more than ~1 s late.
    ``level`` (one of ``LOG_LEVELS``) wins over ``verbose``.
    """
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(_Formatter("%(asctime)s %(levelname)-5s %(message)s"))
    buffered = _Burst(256, flushLevel=logging.WARNING, target=stream)
    root = logging.getLogger()
    root.addHandler(buffered)
    if level is not None:
        root.setLevel(level.upper())
    else:
        root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


pass_state = click.make_pass_decorator(State)
