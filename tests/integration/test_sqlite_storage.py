"""A real worker on an SQLite file whose disk fills up while it runs a job.

The database lives on a tmpfs of 2 MiB mounted for the test (mounting needs root; the test is
skipped without it). A file filling that disk makes SQLite refuse the acknowledgement with
SQLITE_FULL; the worker must keep running, say why, keep the job, and acknowledge it once the
file is gone.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, set_app
from conveyor.config import load_settings

from .harness import Workers, wait_until
from .jobs import Sleepy, read_records

DISK_SIZE = "2m"


@pytest.fixture
def tiny_disk(project: Path) -> Iterator[Path]:
    mount = project / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no room left; the file is what frees it again."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError:
            pass
        try:
            while True:
                out.write(b"\0")
        except OSError:
            return filler


def test_a_full_disk_stops_no_worker_and_the_job_is_acknowledged_once_room_is_back(
    project: Path, tiny_disk: Path, workers: Workers
) -> None:
    (project / "conveyor.toml").write_text(
        '[connections.database]\nurl = "sqlite:///disk/conveyor.db"\n'
    )
    app = Conveyor(load_settings(project, env={}))
    previous = set_app(app)
    try:
        job_id = Sleepy(seconds=1.0).dispatch()
        worker = workers.start("--lease", "30")
        wait_until(lambda: read_records(project, "start"), 15, "the job to start")
        filler = fill(tiny_disk)

        wait_until(
            lambda: "storage refused" in worker.stderr() or not worker.alive(), 10,
            "the worker to log the full disk",
        )  # fmt: skip
        assert worker.alive(), worker.stderr()
        assert "database or disk is full" in worker.stderr()
        assert [r["id"] for r in read_records(project, "done")] == [job_id]
        assert app.driver().size("default").reserved == 1, "the job is kept while the disk is full"

        filler.unlink()
        wait_until(
            lambda: app.driver().size("default").total == 0, 10, "the acknowledgement to land"
        )
        assert worker.alive(), worker.stderr()
        assert "Traceback" not in worker.stderr()
        assert [r["id"] for r in read_records(project, "start")] == [job_id], "it ran once"
    finally:
        set_app(previous)
        app.close()
