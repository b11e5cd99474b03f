"""``conveyor failed | retry | forget | flush``: the failed-jobs store."""

from __future__ import annotations

import json
import time
from datetime import datetime

import click
from rich.table import Table

from .. import failed as failed_ops
from ..drivers.base import Driver, FailedRecord
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
from .ids import failed_record
from .text import inert, plain

_conn = click.option("--connection", "-c", default=None, help="Connection whose store to use. [default: the default connection]")  # fmt: skip


def _first_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:100] if lines else ""


@click.group(invoke_without_command=True)
@_conn
@click.option("--queue", "-q", default=None, callback=queue_option, help="Only jobs of this queue.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@app_option
@click.pass_context
@guarded
def failed(
    ctx: click.Context, connection: str | None, queue: str | None, limit: int, as_json: bool
) -> None:
    """List failed jobs, newest first; `failed show ID` prints one with its whole exception.

    \b
    Examples:
      conveyor failed --queue emails
      conveyor failed --json | jq .exception
      conveyor failed show 5
      conveyor failed show 3f2a9c          a uuid's first 6+ characters, if no other has them
    """
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(State)
    assert state is not None
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


def _records(driver: Driver, keys: tuple[str, ...]) -> list[FailedRecord]:
    """The records ``keys`` name (ids, uuids, uuid prefixes), all or none: one not found is one
    line and exit 1, an ambiguous prefix exit 2, before anything is done to the others."""
    found = [(key, failed_record(driver.failed, key)) for key in keys]
    missing = [key for key, record in found if record is None]
    if missing:
        fail(f"no failed job with id {', '.join(missing)}", NOT_FOUND)
    return [record for _, record in found if record is not None]


@failed.command()
@click.argument("key", metavar="ID")
@_conn
@app_option
@pass_state
@guarded
def show(state: State, key: str, connection: str | None) -> None:
    """Print one failed job: its fields, payload and the whole exception with its traceback.

    ID is the number `conveyor failed` lists, the job's uuid, or the uuid's first 6 or more
    characters if no other failed job's uuid starts so.

    \b
    Examples:
      conveyor failed show 5
      conveyor failed show 3f2a9c
    """
    (record,) = _records(state.app(import_modules=False).driver(connection), (key,))
    when = datetime.fromtimestamp(record.failed_at).strftime("%Y-%m-%d %H:%M:%S")
    fields = (
        ("id", record.id), ("uuid", record.uuid), ("connection", record.connection),
        ("queue", record.queue), ("job", peek_name(record.payload)), ("failed at", when),
        ("payload", record.payload.decode("utf-8", "replace")),
    )  # fmt: skip
    for label, value in fields:
        click.echo(f"{label + ':':<12}{plain(value)}")
    click.echo("exception:")
    click.echo(plain(record.exception, keep_newlines=True))


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
    for key, record in zip(ids, _records(driver, ids), strict=True):
        failed_ops.retry(driver, record)
        console.print(
            f"Queued failed job {inert(key)} ({inert(peek_name(record.payload))}) again as"
            f" {inert(record.uuid)}."
        )


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
    for key, record in zip(ids, _records(driver, ids), strict=True):
        if driver.failed.forget(record.uuid if record.id is None else str(record.id)):
            console.print(f"Forgot failed job {inert(key)}.")


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
