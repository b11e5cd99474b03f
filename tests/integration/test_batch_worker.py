"""Batch jobs through a real worker on SQLite: the executor child never touches the storage.

Whether a job's batch was cancelled is asked by the control process before it hands the job
over; the child only runs user code. Both executor children (``--concurrency 1`` and the event
loop one) are checked.
"""

from __future__ import annotations

from pathlib import Path

import psutil

from conveyor import Conveyor, batch

from .harness import Workers, wait_until
from .jobs import Sleepy, read_records


def _storage_handles(pid: int, database: Path) -> set[tuple[str, int]]:
    """(path, fd) of the database's files (with its -wal and -shm) that ``pid`` holds open."""
    try:
        opened = psutil.Process(pid).open_files()
    except psutil.NoSuchProcess:
        return set()
    return {(f.path, f.fd) for f in opened if Path(f.path).name.startswith(database.name)}


def test_the_executor_child_opens_no_storage_while_a_batch_job_runs(
    app: Conveyor, project: Path, both_executors: Workers
) -> None:
    database = Path(app.settings.connection().url.removeprefix("sqlite:///"))
    handle = batch([Sleepy(seconds=1.5), Sleepy(seconds=0.1)]).dispatch()
    worker = both_executors.start("--stop-when-empty")
    wait_until(lambda: read_records(project, "start"), 15, "the first batch job to start")
    children = worker.executor_pids()
    assert children, "the job runs in an executor child"
    control = _storage_handles(worker.pid, database)
    assert control, "the control process holds the database"
    for pid in children:
        # a forked child inherits the control process's handles (same numbers, never used);
        # one it opened itself would be a handle the control process does not have
        opened = _storage_handles(pid, database) - control
        assert opened == set(), f"executor child {pid} opened the database"
    assert worker.wait(30) == 0, worker.stderr()
    assert len(read_records(project, "done")) == 2
    assert handle.fresh().finished()


def test_the_jobs_of_a_cancelled_batch_skip_their_work_in_a_real_worker(
    app: Conveyor, project: Path, both_executors: Workers
) -> None:
    handle = batch([Sleepy(seconds=0.0) for _ in range(4)]).dispatch()
    handle.cancel()
    worker = both_executors.start("--stop-when-empty")
    assert worker.wait(30) == 0, worker.stderr()
    assert read_records(project, "start") == [], "no job of the cancelled batch ran"
    assert worker.stderr().count("skipped: its batch was cancelled") == 4
    done = handle.fresh()
    assert done.finished() and done.pending_jobs == 0 and done.failed_jobs == 0
    assert app.driver().size("default").total == 0
