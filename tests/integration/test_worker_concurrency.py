"""Several worker processes on one SQLite file: each job runs exactly once, nobody sees a lock."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from conveyor import Conveyor, dispatch_many

from .harness import Workers
from .jobs import Noop, read_records

JOBS = 10_000
WORKERS = 4


@pytest.mark.slow
def test_four_workers_run_ten_thousand_jobs_each_exactly_once(
    app: Conveyor, project: Path, workers: Workers
) -> None:
    dispatch_many(Noop(n=i) for i in range(JOBS))
    started = time.monotonic()
    pool = workers.start_many(WORKERS, "--stop-when-empty", "--lease", "10", "--sleep", "0.1")
    codes = [w.wait(100) for w in pool]
    elapsed = time.monotonic() - started
    print(f"\n{JOBS} no-op jobs, {WORKERS} workers on one SQLite file: {elapsed:.1f}s wall")

    assert codes == [0] * WORKERS
    runs = Counter(r["n"] for r in read_records(project, "done"))
    assert set(runs) == set(range(JOBS)), f"{JOBS - len(runs)} job(s) never ran"
    assert [n for n, count in runs.items() if count > 1] == []
    for worker in pool:
        assert "locked" not in worker.stderr().lower(), worker.stderr()[-2000:]
        assert "Traceback" not in worker.stderr()
    # each worker took a share, so the claims really did race
    shares = [int(re.search(r"queue empty \((\d+) jobs\)", w.stderr()).group(1)) for w in pool]  # type: ignore[union-attr]
    print(f"jobs per worker: {shares}")
    assert sum(shares) == JOBS and min(shares) > 0
    assert app.driver().size("default").total == 0
    assert app.driver().failed.count() == 0
