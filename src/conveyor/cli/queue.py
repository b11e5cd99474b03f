"""``conveyor clear | restart | migrate | config``: tending queues and settings."""

from __future__ import annotations

import click
from rich.table import Table

from .common import State, app_option, console, guarded, pass_state, queue_option
from .text import inert, plain


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
