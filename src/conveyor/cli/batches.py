"""``conveyor batches [show | cancel | retry | prune]``: watching and tending batches."""

from __future__ import annotations

import json
import time
from datetime import datetime

import click
from rich.table import Table

from .. import failed as failed_ops
from ..bus.batch import Batch, find_batch
from ..bus.stores import store_for
from .common import NOT_FOUND, FiniteFloat, State, app_option, console, fail, guarded, pass_state
from .ids import stored_batch_id
from .text import inert

_conn = click.option("--connection", "-c", default=None, help="Connection whose batches to use. [default: the default connection]")  # fmt: skip


def _bar(percent: int, width: int = 20) -> str:
    filled = percent * width // 100
    return "█" * filled + "░" * (width - filled)


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def _status(b: Batch) -> str:
    if b.cancelled():
        return "[yellow]cancelled[/]" + (" (finished)" if b.finished() else "")
    if b.finished():
        return "[red]finished, failures[/]" if b.has_failures() else "[green]finished[/]"
    return "running"


def _find(state: State, batch_id: str, connection: str | None) -> Batch:
    app = state.app(import_modules=False)
    name = connection or app.settings.default
    full = stored_batch_id(store_for(app.driver(name)), batch_id)
    found = None if full is None else find_batch(full, connection=name, app=app)
    if found is None:
        fail(
            f"no batch with id {batch_id} on connection {connection or app.settings.default!r}",
            NOT_FOUND,
        )
    assert found is not None
    return found


@click.group(invoke_without_command=True)
@_conn
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@app_option
@click.pass_context
@guarded
def batches(ctx: click.Context, connection: str | None, limit: int, as_json: bool) -> None:
    """List batches, newest first, with their progress.

    \b
    Examples:
      conveyor batches
      conveyor batches show 3f2a9c         counts, progress bar, failed job ids
      conveyor batches cancel 3f2a9c       jobs not yet started skip their work
      conveyor batches retry 3f2a9c        retry the batch's failed jobs
      conveyor batches prune --hours 48    delete finished batches older than 48 hours

    An ID is a batch's whole id or its first 6 or more characters, if no other id starts so.
    """
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(State)
    assert state is not None
    app = state.app(import_modules=False)
    name = connection or app.settings.default
    found = [Batch(r, app, name) for r in store_for(app.driver(name)).page(limit)]
    if as_json:
        for b in found:
            click.echo(json.dumps(b.to_dict()))
        return
    if not found:
        console.print("No batches.")
        return
    table = Table(title=f"Batches on {inert(name)}")
    for col in ("ID", "Name", "Progress", "Total", "Pending", "Failed", "Created", "Status"):
        table.add_column(col, justify="right" if col in ("Total", "Pending", "Failed") else "left")
    for b in found:
        table.add_row(
            inert(b.id), inert(b.name or "-"), f"{_bar(b.progress(), 10)} {b.progress():>3}%", str(b.total_jobs),
            str(b.pending_jobs), str(b.failed_jobs), _when(b.created_at), _status(b),
        )  # fmt: skip
    console.print(table)


@batches.command()
@click.argument("batch_id", metavar="ID")
@_conn
@click.option("--json", "as_json", is_flag=True, help="Print the batch as JSON.")
@app_option
@pass_state
@guarded
def show(state: State, batch_id: str, connection: str | None, as_json: bool) -> None:
    """Show one batch: counts, a progress bar and its failed job ids.

    ID is the batch's id or its first 6 or more characters, if no other batch's id starts so.

    \b
    Example:
      conveyor batches show 3f2a9c
    """
    b = _find(state, batch_id, connection)
    if as_json:
        click.echo(json.dumps(b.to_dict(), indent=2))
        return
    named = f" {inert(repr(b.name))}" if b.name else ""
    console.print(f"Batch [bold]{inert(b.id)}[/]{named}")
    console.print(f"  {_bar(b.progress())} {b.progress()}%  {_status(b)}")
    rows = [
        ("total", b.total_jobs), ("processed", b.processed_jobs), ("pending", b.pending_jobs),
        ("failed", b.failed_jobs), ("allows failures", "yes" if b.allows_failures() else "no"),
        ("created", _when(b.created_at)), ("cancelled", _when(b.cancelled_at)),
        ("finished", _when(b.finished_at)),
    ]  # fmt: skip
    for label, value in rows:
        console.print(f"  {label:<16}{value}")
    if b.failed_job_ids:
        console.print("  failed jobs (conveyor failed / conveyor batches retry):")
        for job_id in b.failed_job_ids:
            console.print(f"    {inert(job_id)}")


@batches.command()
@click.argument("batch_id", metavar="ID")
@_conn
@app_option
@pass_state
@guarded
def cancel(state: State, batch_id: str, connection: str | None) -> None:
    """Cancel a batch: its jobs not yet started skip their work; finally callbacks still run.

    \b
    Example:
      conveyor batches cancel 3f2a9c
    """
    b = _find(state, batch_id, connection)
    if b.cancelled():
        console.print(f"Batch {inert(b.id)} was already cancelled.")
        return
    b.cancel()
    console.print(
        f"Cancelled batch {inert(b.id)}: {b.pending_jobs} pending job(s) will skip their work."
    )


@batches.command()
@click.argument("batch_id", metavar="ID")
@_conn
@app_option
@pass_state
@guarded
def retry(state: State, batch_id: str, connection: str | None) -> None:
    """Retry every failed job of a batch; the batch counts them as pending again.

    \b
    Example:
      conveyor batches retry 3f2a9c
    """
    b = _find(state, batch_id, connection)
    driver = state.app(import_modules=False).driver(b.connection)
    queued, missing = 0, []
    for job_id in b.failed_job_ids:
        record = driver.failed.get(job_id)
        if record is None:
            missing.append(job_id)
            continue
        failed_ops.retry(driver, record)
        queued += 1
    console.print(f"Queued {queued} failed job(s) of batch {inert(b.id)} again.")
    if missing:
        fail(
            f"{len(missing)} failed job(s) are no longer in the failed store (forgotten or "
            f"flushed): {', '.join(missing)}",
            NOT_FOUND,
        )


@batches.command()
@_conn
@click.option("--hours", type=FiniteFloat(min=0), default=24.0, show_default=True, help="Delete finished batches older than this.")  # fmt: skip
@click.option("--unfinished", type=FiniteFloat(min=0), default=None, metavar="HOURS", help="Also delete unfinished batches created more than HOURS ago.")  # fmt: skip
@click.option("--cancelled", type=FiniteFloat(min=0), default=None, metavar="HOURS", help="Also delete cancelled batches created more than HOURS ago.")  # fmt: skip
@app_option
@pass_state
@guarded
def prune(
    state: State, connection: str | None, hours: float, unfinished: float | None,
    cancelled: float | None,
) -> None:  # fmt: skip
    """Delete old batch records (their jobs are not touched), as Laravel's queue:prune-batches.

    \b
    Examples:
      conveyor batches prune
      conveyor batches prune --hours 48 --unfinished 72
    """
    app = state.app(import_modules=False)
    now = time.time()

    def ago(h: float | None) -> float | None:
        return None if h is None else now - h * 3600

    store = store_for(app.driver(connection))
    count = store.prune(ago(hours), ago(unfinished), ago(cancelled))
    console.print(f"Deleted {count} batch record(s).")
