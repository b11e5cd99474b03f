"""``conveyor failed | retry | forget | flush``: the failed-jobs store."""

from __future__ import annotations

import json
import time
from datetime import datetime

import click
from rich.table import Table

from .. import failed as failed_ops
from ..envelope import peek_name
from .common import (
    NOT_FOUND,
    FiniteFloat,
    State,
    app_option,
    console,
    fail,
    guarded,
    pass_state,
    queue_option,
)
from .text import inert

_conn = click.option("--connection", "-c", default=None, help="Connection whose store to use. [default: the default connection]")  # fmt: skip


def _first_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:100] if lines else ""


@click.command()
@_conn
@click.option("--queue", "-q", default=None, callback=queue_option, help="Only jobs of this queue.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@app_option
@pass_state
@guarded
def failed(
    state: State, connection: str | None, queue: str | None, limit: int, as_json: bool
) -> None:
    """List failed jobs, newest first.

    \b
    Example:
      conveyor failed --queue emails
      conveyor failed --json | jq .exception
    """
    driver = state.app(import_modules=False).driver(connection)
    records = driver.failed.page(queue=queue, limit=limit)
    if as_json:
        for r in records:
            click.echo(json.dumps({
                "id": r.id, "uuid": r.uuid, "connection": r.connection, "queue": r.queue,
                "job": peek_name(r.payload), "failed_at": r.failed_at,
                "exception": r.exception, "payload": r.payload.decode("utf-8", "replace"),
            }))  # fmt: skip
        return
    if not records:
        console.print("No failed jobs.")
        return
    table = Table(title=f"Failed jobs ({driver.failed.count(queue)})")
    for col in ("ID", "Connection", "Queue", "Job", "Failed at", "Error"):
        table.add_column(col, overflow="fold")
    for r in records:
        when = datetime.fromtimestamp(r.failed_at).strftime("%Y-%m-%d %H:%M:%S")
        cells = (
            str(r.id),
            r.connection,
            r.queue,
            peek_name(r.payload),
            when,
            _first_line(r.exception),
        )
        table.add_row(*(inert(cell) for cell in cells))  # stored text is data, not markup
    console.print(table)


@click.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID... | all")
@_conn
@click.option(
    "--queue",
    "-q",
    default=None,
    callback=queue_option,
    help="With `all`: only this queue's failed jobs.",
)
@app_option
@pass_state
@guarded
def retry(state: State, ids: tuple[str, ...], connection: str | None, queue: str | None) -> None:
    """Put failed jobs back on their queue with fresh attempts.

    \b
    Examples:
      conveyor retry 5
      conveyor retry 5 6 7
      conveyor retry all --queue emails
    """
    driver = state.app(import_modules=False).driver(connection)
    if list(ids) == ["all"]:
        count = failed_ops.retry_all(driver, queue)
        console.print(f"Queued {count} failed job(s) again.")
        return
    missing = []
    for key in ids:
        record = driver.failed.get(key)
        if record is None:
            missing.append(key)
            continue
        failed_ops.retry(driver, record)
        console.print(
            f"Queued failed job {inert(key)} ({inert(peek_name(record.payload))}) again as"
            f" {inert(record.uuid)}."
        )
    if missing:
        fail(f"no failed job with id {', '.join(missing)}", NOT_FOUND)


@click.command()
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@_conn
@app_option
@pass_state
@guarded
def forget(state: State, ids: tuple[str, ...], connection: str | None) -> None:
    """Delete failed jobs from the store without retrying them.

    \b
    Example:
      conveyor forget 5
    """
    driver = state.app(import_modules=False).driver(connection)
    missing = [key for key in ids if not driver.failed.forget(key)]
    for key in ids:
        if key not in missing:
            console.print(f"Forgot failed job {inert(key)}.")
    if missing:
        fail(f"no failed job with id {', '.join(missing)}", NOT_FOUND)


@click.command()
@_conn
@click.option(
    "--hours",
    type=FiniteFloat(min=0),
    default=None,
    help="Only those that failed more than this many hours ago.",
)
@app_option
@pass_state
@guarded
def flush(state: State, connection: str | None, hours: float | None) -> None:
    """Delete all failed jobs (or only old ones).

    \b
    Examples:
      conveyor flush
      conveyor flush --hours 48
    """
    driver = state.app(import_modules=False).driver(connection)
    older = time.time() - hours * 3600 if hours is not None else None
    console.print(f"Deleted {driver.failed.flush(older)} failed job(s).")
