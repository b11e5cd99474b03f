"""``conveyor status``: what waits on which queue, what failed, who works, and what to start."""

from __future__ import annotations

import time

import click
from rich.table import Table

from ..config import ConnectionSettings
from ..drivers.base import FailedJobStore, QueueSize, WorkerInfo
from .common import State, app_option, console, guarded, pass_state, queues_option
from .text import inert

SEEN_WITHIN = 15.0
#: failed records read per page while looking for the queues that hold failed jobs
FAILED_PAGE = 500
#: ... and at most this many in all: a store of 10,000 failures is read in 20 pages at worst
FAILED_SCAN = 10_000


def failed_queues(store: FailedJobStore) -> tuple[dict[str, int], bool]:
    """The failed count of every queue with failed jobs, newest first; and whether it is all.

    The store cannot list its queues, so pages of records are read, newest first, until the
    counts of the queues found add up to the store's total: one page where the failures sit in
    a few queues, as they mostly do. ``False``: ``FAILED_SCAN`` records were read before then.
    """
    total = store.count()
    counts: dict[str, int] = {}
    before: int | None = None
    for _ in range(FAILED_SCAN // FAILED_PAGE):
        if sum(counts.values()) >= total:
            return counts, True
        page = store.page(before=before, limit=FAILED_PAGE)
        for record in page:
            if record.queue not in counts:
                counts[record.queue] = store.count(record.queue)
        before = page[-1].id if page else None
        if before is None:
            return counts, True
    return counts, sum(counts.values()) >= total


def work_command(settings: ConnectionSettings, default: str, queues: list[str]) -> str:
    """The ``conveyor work`` that serves ``queues`` on this connection."""
    named = "" if settings.name == default else f" {settings.name}"
    listed = f" --queue {','.join(queues)}" if queues != [settings.queue] else ""
    return f"conveyor work{named}{listed}"


def _worker_table(workers: list[WorkerInfo]) -> Table:
    """Each live worker; its running job by id, which is all a heartbeat carries of it."""
    table = Table(title="Workers")
    for col in ("Worker", "Queues", "Up", "Seen", "Jobs", "Running"):
        table.add_column(col)
    now = time.time()
    for w in workers:
        table.add_row(
            inert(w.id),
            inert(",".join(w.queues)),
            f"{now - w.started_at:.0f}s",
            f"{max(0.0, now - w.last_seen):.0f}s ago",
            str(w.processed),
            inert(w.current_job or "-"),
        )
    return table


def _advise(
    settings: ConnectionSettings, default: str, sizes: dict[str, QueueSize],
    failed: dict[str, int], workers: list[WorkerInfo],
) -> None:  # fmt: skip
    """Say which queues have jobs no live worker takes, and the command that would take them."""
    served = {q for w in workers for q in w.queues}
    waiting = {n: s.pending + s.delayed for n, s in sizes.items() if n not in served}
    stuck = sum(waiting.values())
    seen = f"in the last {SEEN_WITHIN:g}s"
    if not stuck:
        if not workers:
            console.print(f"No worker has been seen on {inert(repr(settings.name))} {seen}.")
        return
    if workers:
        names = sorted(n for n, count in waiting.items() if count)
        console.print(
            f"[yellow]{stuck} job(s) wait on {inert(', '.join(names))}, which no worker seen"
            f" {seen} takes.[/] Start one: [bold]{inert(work_command(settings, default, names))}[/]"
        )
        return
    with_jobs = [n for n, s in sizes.items() if s.total or failed.get(n)]
    ordered = sorted(n for n in with_jobs if n != settings.queue)
    ordered += [settings.queue] if settings.queue in with_jobs else []
    console.print(
        f"[yellow]{stuck} job(s) are waiting and no worker has been seen on"
        f" {inert(repr(settings.name))} {seen}.[/] Start one:"
        f" [bold]{inert(work_command(settings, default, ordered))}[/]"
    )


@click.command()
@click.argument("connection", required=False)
@click.option(
    "--queue",
    "-q",
    "queues",
    default=None,
    callback=queues_option,
    metavar="Q1,Q2",
    help="Queues to show. [default: every queue with jobs in any state, failed ones too, and "
    "the connection's queue]",
)
@app_option
@pass_state
@guarded
def status(state: State, connection: str | None, queues: tuple[str, ...] | None) -> None:
    """Show pending, delayed, reserved and failed jobs per queue, and live workers.

    Every queue holding a job in any state is listed. When jobs wait on queues no live worker
    takes, it prints the `conveyor work --queue ...` that would take them.

    \b
    Example:
      conveyor status
      conveyor status database --queue emails,default
    """
    app = state.app(import_modules=False)
    settings = app.settings.connection(connection)
    driver = app.driver(settings.name)
    failed, complete = failed_queues(driver.failed) if queues is None else ({}, True)
    names = queues or sorted({settings.queue, *driver.queues(), *failed})
    table = Table(title=f"Queues on {inert(settings.name)} ({inert(settings.masked_url())})")
    for col in ("Queue", "Pending", "Delayed", "Reserved", "Failed"):
        table.add_column(col, justify="right" if col != "Queue" else "left")
    sizes = {name: driver.size(name) for name in names}
    for name, size in sizes.items():
        if name not in failed:
            failed[name] = driver.failed.count(name)
        cells = (size.pending, size.delayed, size.reserved, failed[name])
        table.add_row(inert(name), *(str(n) for n in cells))
    console.print(table)
    if not complete:
        console.print(
            f"Queues whose failed jobs are all older than the newest {FAILED_SCAN:,} failures"
            " are not listed: conveyor failed --queue NAME"
        )
    workers = driver.workers(SEEN_WITHIN)
    if workers:
        console.print(_worker_table(workers))
    _advise(settings, app.settings.default, sizes, failed, workers)
