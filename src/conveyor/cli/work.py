"""``conveyor work``: the worker, with the options Laravel's queue:work has."""

from __future__ import annotations

import logging

import click

from .. import backoff as backoff_mod
from ..drivers.base import Driver
from ..errors import ConnectionUnavailable
from ..worker.async_child import ConcurrentRunner
from ..worker.concurrent import ConcurrentWorker
from ..worker.executor import WorkerDefaults
from ..worker.loop import PREFETCH_HOLD, Worker, WorkerOptions
from ..worker.process import SPIN, ChildRunner, InlineRunner
from .common import (
    LOG_LEVELS,
    FiniteFloat,
    State,
    app_option,
    fail,
    guarded,
    pass_state,
    queues_option,
    setup_logging,
)
from .text import plain

log = logging.getLogger(__name__)

#: async jobs at once by default, as taskiq does; sync jobs are never affected
DEFAULT_CONCURRENCY = 100


@click.command()
@click.argument("connection", required=False)
@click.option(
    "--queue",
    "-q",
    default=None,
    callback=queues_option,
    metavar="Q1,Q2",
    help="Queues in priority order: all of high before any of default. [default: the connection's queue]",
)
@click.option("--once", is_flag=True, help="Process one job, then exit.")
@click.option(
    "--stop-when-empty",
    is_flag=True,
    help="Exit as soon as no job is available; delayed jobs not yet due stay, and a line says "
    "how many: conveyor work --stop-when-empty",
)
@click.option(
    "--timeout",
    type=FiniteFloat(min=0),
    default=60.0,
    show_default=True,
    help="Seconds a job may run before its process is killed (0: up to --max-timeout); a job's own `timeout` wins.",
)
@click.option(
    "--max-timeout",
    type=FiniteFloat(min=0),
    default=3600.0,
    show_default=True,
    help="The longest any job may run, whatever its class or its payload says: a job with a longer `timeout`, or none, is killed at this. 0: no bound.",
)
@click.option(
    "--tries",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Attempts before a job fails (0: unlimited); a job's own `tries` wins.",
)
@click.option(
    "--backoff",
    default="0",
    show_default=True,
    metavar="S[,S...]",
    help="Seconds to wait before retrying, per attempt: 3,5,10.",
)
@click.option(
    "--sleep",
    type=FiniteFloat(min=0),
    default=3.0,
    show_default=True,
    help="Seconds to wait for a job before checking again (drivers that can wake sooner do).",
)
@click.option(
    "--max-jobs",
    type=click.IntRange(min=0),
    default=0,
    help="Exit after this many jobs (0: no limit).",
)
@click.option(
    "--max-time",
    type=FiniteFloat(min=0),
    default=0.0,
    help="Exit after this many seconds (0: no limit).",
)
@click.option(
    "--memory",
    type=FiniteFloat(min=1),
    default=None,
    metavar="MB",
    help="Replace the executor process between jobs once it uses more than MB megabytes.",
)
@click.option(
    "--lease",
    type=FiniteFloat(min=0.1),
    default=None,
    help="Seconds a reservation lasts without renewal. [default: the connection's retry_after]",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=DEFAULT_CONCURRENCY,
    show_default=True,
    help="Jobs with `async def handle` run this many at once in the executor process; sync "
    "jobs always run one at a time. 1: strictly one job at a time.",
)
@click.option(
    "--prefetch-hold",
    type=FiniteFloat(min=0),
    default=PREFETCH_HOLD,
    show_default=True,
    help="While a sync job runs, the next jobs are claimed ahead (their attempts counted only "
    "when they start) and go back to the queue for other workers if they wait longer than this "
    "many seconds. 0: claim a job only when it can start.",
)
@click.option(
    "--prefetch",
    type=click.IntRange(min=0, max=100),
    default=None,
    help="How many jobs to claim ahead while a sync job runs: one round trip to the queue "
    "server then serves several short jobs. 0: claim a job only when it can start. "
    "[default: 16 on Redis and PostgreSQL, which claim them all in one call; 1 on SQLite "
    "and MariaDB/MySQL, where each claim is a statement of its own]",
)
@click.option(
    "--spin",
    type=FiniteFloat(min=0, max=0.01),
    default=SPIN,
    show_default=True,
    help="Seconds the executor process keeps polling for the next job after one ends, before "
    "it sleeps: waking it costs more than a job of a few microseconds takes. It spends CPU "
    "only while it polls. 0: sleep at once (many workers on few cores).",
)
@click.option("-v", "--verbose", count=True, help="Debug logs with -vv (same as the global -v).")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default=None,
    help="Log this level and above: `warning` drops the line per job of a busy worker. [default: info]",
)
@click.option(
    "--quiet", is_flag=True, help="Log warnings and errors only: the same as --log-level warning."
)
@click.option(
    "--in-process",
    is_flag=True,
    help="Run jobs in the worker process itself, one at a time: no hard timeout, and a crashing job takes the worker down.",
)
@app_option
@pass_state
@guarded
def work(
    state: State, connection: str | None, queue: tuple[str, ...] | None, once: bool,
    stop_when_empty: bool, timeout: float, max_timeout: float, tries: int, backoff: str,
    sleep: float, max_jobs: int, max_time: float,
    memory: float | None, lease: float | None, concurrency: int, prefetch_hold: float,
    prefetch: int | None, spin: float, verbose: int, log_level: str | None, quiet: bool,
    in_process: bool,
) -> None:  # fmt: skip
    """Process jobs from a connection's queues until stopped.

    SIGTERM or Ctrl-C finishes the running jobs and exits 0; a second one releases them at
    once. Jobs run in a separate executor process, so a job that hangs is killed after its
    timeout and a job that crashes costs an attempt, never the worker. Up to --concurrency
    jobs with `async def handle` share that process; sync jobs run one at a time.

    \b
    Examples:
      conveyor work
      conveyor work --app myapp.jobs --stop-when-empty
      conveyor work database --queue payments,emails,default --tries 3 --backoff 3,5,10
      conveyor work --once -v
      conveyor work --quiet                 # warnings and errors only
      conveyor work --max-jobs 1000 --max-time 3600 --memory 256
      conveyor work --queue scrape --concurrency 50
    """
    setup_logging(state.verbose + verbose, log_level or ("warning" if quiet else None))
    app = state.app()
    settings = app.settings.connection(connection)
    try:
        schedule = backoff_mod.normalize(backoff)
    except ValueError as exc:
        fail(f"--backoff: {exc}")
    defaults = WorkerDefaults(
        tries=tries, backoff=schedule, timeout=timeout or None, max_timeout=max_timeout or None,
        max_payload=app.settings.max_payload,
    )  # fmt: skip
    options = WorkerOptions(
        queues=queue or (settings.queue,),
        once=once, stop_when_empty=stop_when_empty, sleep=sleep, max_jobs=max_jobs,
        max_time=max_time, lease=lease or settings.retry_after, prefetch_hold=prefetch_hold,
        prefetch=prefetch,
    )  # fmt: skip
    driver = app.driver(settings.name)
    worker: Worker | ConcurrentWorker
    if in_process:
        worker = Worker(driver, InlineRunner(app.executor(defaults)), app.events, defaults, options)
    elif concurrency > 1:
        runner = ConcurrentRunner(lambda: app.executor(defaults), memory, spin)
        worker = ConcurrentWorker(driver, runner, app.events, defaults, options, concurrency)
    else:
        serial = ChildRunner(lambda: app.executor(defaults), memory, spin)
        worker = Worker(driver, serial, app.events, defaults, options)
    click.echo(
        plain(
            f"Processing jobs from {settings.name} [{','.join(options.queues)}]"
            f" (lease {options.lease:g}s, timeout {timeout:g}s, max {max_timeout:g}s,"
            f" tries {tries}, concurrency {1 if in_process else concurrency})"
        ),
        err=True,
    )
    code = worker.run()
    if stop_when_empty:
        _say_what_is_delayed(driver, options.queues)
    raise SystemExit(code)


def _say_what_is_delayed(driver: Driver, queues: tuple[str, ...]) -> None:
    """A worker that stopped on an empty queue leaves delayed jobs (a retry's backoff, a
    ``delay()``) behind: say so, or they look lost. The drivers do not tell when the next one
    is due without reading them, so this says how many and how to run them."""
    try:
        delayed = {name: driver.size(name).delayed for name in queues}
    except ConnectionUnavailable:
        return  # the worker has already said its server is away
    waiting = {name: count for name, count in delayed.items() if count}
    if waiting:
        where = ", ".join(f"{count} on {name}" for name, count in waiting.items())
        log.warning(
            "%d delayed job(s) not yet due are left (%s): `conveyor work` without"
            " --stop-when-empty runs them when they are due",
            sum(waiting.values()),
            plain(where),
        )
