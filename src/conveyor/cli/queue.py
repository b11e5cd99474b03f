"""``conveyor status | clear | restart | migrate | config``: looking at and tending queues."""

from __future__ import annotations

import time

import click
from rich.table import Table

from .common import State, app_option, console, guarded, pass_state, queue_option, queues_option
from .text import inert, plain

SEEN_WITHIN = 15.0


@click.command()
@click.argument("connection", required=False)
@click.option(
    "--queue",
    "-q",
    "queues",
    default=None,
    callback=queues_option,
    metavar="Q1,Q2",
    help="Queues to show. [default: every queue with jobs, and the connection's queue]",
)
@app_option
@pass_state
@guarded
def status(state: State, connection: str | None, queues: tuple[str, ...] | None) -> None:
    """Show pending, delayed and reserved jobs per queue, failed jobs, and live workers.

    \b
    Example:
      conveyor status
      conveyor status database --queue emails,default
    """
    app = state.app(import_modules=False)
    settings = app.settings.connection(connection)
    driver = app.driver(settings.name)
    names = queues or sorted({settings.queue, *driver.queues()})
    table = Table(title=f"Queues on {inert(settings.name)} ({inert(settings.masked_url())})")
    for col in ("Queue", "Pending", "Delayed", "Reserved", "Failed"):
        table.add_column(col, justify="right" if col != "Queue" else "left")
    waiting = 0
    for name in names:
        size = driver.size(name)
        waiting += size.pending
        table.add_row(
            inert(name),
            str(size.pending),
            str(size.delayed),
            str(size.reserved),
            str(driver.failed.count(name)),
        )
    console.print(table)
    workers = driver.workers(SEEN_WITHIN)
    if workers:
        wt = Table(title="Workers")
        for col in ("Worker", "Queues", "Up", "Jobs", "Running"):
            wt.add_column(col)
        for w in workers:
            wt.add_row(
                inert(w.id),
                inert(",".join(w.queues)),
                f"{time.time() - w.started_at:.0f}s",
                str(w.processed),
                inert(w.current_job or "-"),
            )
        console.print(wt)
    elif waiting:
        console.print(
            f"[yellow]{waiting} job(s) are waiting and no worker has been seen on"
            f" {inert(repr(settings.name))} in the last {SEEN_WITHIN:g}s.[/] Start one:"
            f" [bold]conveyor work {inert(settings.name)}[/]"
        )
    else:
        console.print(
            f"No worker has been seen on {inert(repr(settings.name))} in the last {SEEN_WITHIN:g}s."
        )


@click.command()
@click.argument("connection", required=False)
@click.option(
    "--queue",
    "-q",
    default=None,
    callback=queue_option,
    help="Queue to empty. [default: the connection's queue]",
)
@click.option("--force", is_flag=True, help="Do not ask for confirmation.")
@app_option
@pass_state
@guarded
def clear(state: State, connection: str | None, queue: str | None, force: bool) -> None:
    """Delete every job of a queue (pending, delayed and reserved). Failed jobs stay.

    \b
    Examples:
      conveyor clear
      conveyor clear database --queue emails --force
    """
    app = state.app(import_modules=False)
    settings = app.settings.connection(connection)
    name = queue or settings.queue
    if not force and not click.confirm(
        plain(f"Delete all jobs of queue {name!r} on {settings.name}?"), default=False
    ):
        raise SystemExit(1)
    console.print(
        f"Cleared {app.driver(settings.name).clear(name)} job(s) from"
        f" {inert(settings.name)}:{inert(name)}."
    )


@click.command()
@click.argument("connection", required=False)
@app_option
@pass_state
@guarded
def restart(state: State, connection: str | None) -> None:
    """Make every worker on the connection exit after its current job (run after a deploy).

    Your process manager (systemd, supervisor) then starts them again with the new code.

    \b
    Example:
      conveyor restart
    """
    app = state.app(import_modules=False)
    settings = app.settings.connection(connection)
    app.driver(settings.name).request_restart()
    console.print(f"Restart signal sent to workers on {inert(settings.name)}.")


@click.command()
@click.argument("connection", required=False)
@app_option
@pass_state
@guarded
def migrate(state: State, connection: str | None) -> None:
    """Create or upgrade Conveyor's tables on a SQL connection.

    \b
    Example:
      conveyor migrate
    """
    app = state.app(import_modules=False)
    settings = app.settings.connection(connection)
    app.driver(settings.name).migrate()
    console.print(f"Schema of {inert(settings.name)} is up to date.")


@click.command()
@app_option
@pass_state
@guarded
def config(state: State) -> None:
    """Print the resolved settings, with passwords masked.

    \b
    Example:
      CONVEYOR_CONNECTION=sync conveyor config
    """
    settings = state.app(import_modules=False).settings
    console.print(f"source:      {inert(settings.source)}")
    console.print(f"default:     {inert(settings.default)}")
    console.print(f"app:         {inert(', '.join(settings.app) or '-')}")
    console.print(f"max_payload: {settings.max_payload}")
    table = Table(title="Connections")
    for col in ("Name", "URL", "Queue", "retry_after"):
        table.add_column(col)
    for c in settings.connections.values():
        table.add_row(inert(c.name), inert(c.masked_url()), inert(c.queue), f"{c.retry_after:g}")
    console.print(table)
