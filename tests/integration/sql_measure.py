"""Not a test: throughput and latency of the PostgreSQL and MariaDB drivers on this machine.

    python -m tests.integration.sql_measure [--backends postgres,mysql] [--jobs 10000]

Per backend, in a schema / database of its own on the machine's servers: single dispatch
(one ``dispatch()`` per job), bulk dispatch (one ``dispatch_many`` of ``--jobs``), drain of
``--jobs`` no-op jobs by one ``conveyor work --stop-when-empty`` (wall time of the process,
start-up included), and dispatch-to-start latency with one idle worker. Each line ends with the
machine's load average (1, 5, 15 min) when it was taken: on a shared machine, compare figures
taken at similar loads only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from conveyor import Conveyor, dispatch_many
from conveyor.config import load_settings
from tests.contract.backends import mysql as my_backend
from tests.contract.backends import postgres as pg_backend

from .harness import conveyor_command, process_env
from .sql_jobs import Nothing, Probe

APP = "tests.integration.sql_jobs"


def measure(url: str, jobs: int, folder: Path) -> dict[str, float]:
    app = Conveyor(load_settings(folder, env={"CONVEYOR_CONNECTION": url}))
    driver = app.driver()
    driver.migrate()
    single = min(jobs, 2000)
    began = time.perf_counter()
    for _ in range(single):
        Nothing().pending().using(app).dispatch()
    figures = {"single dispatch/s": single / (time.perf_counter() - began)}
    driver.clear("default")
    began = time.perf_counter()
    dispatch_many(Nothing().pending().using(app) for _ in range(jobs))
    figures["bulk dispatch/s"] = jobs / (time.perf_counter() - began)
    env = process_env({"CONVEYOR_CONNECTION": url, "CONVEYOR_APP": APP})
    began = time.perf_counter()
    subprocess.run(
        conveyor_command("work", "--stop-when-empty", app=None), cwd=folder, env=env,
        check=True, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    figures["drain/s"] = jobs / (time.perf_counter() - began)
    assert driver.size("default").total == 0, "the worker left jobs behind"
    figures.update(_latency(app, folder, env))
    app.close()
    return figures


def _latency(
    app: Conveyor, folder: Path, env: dict[str, str], probes: int = 300
) -> dict[str, float]:
    log = folder / "sql_probe.log"
    worker = subprocess.Popen(
        conveyor_command("work", app=None), cwd=folder, env=env, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(3.0)  # started, migrated, idle
        for i in range(probes):
            Probe(sent=time.time()).pending().using(app).dispatch()
            while not log.exists() or len(log.read_text().splitlines()) <= i:
                time.sleep(0.0005)
            time.sleep(0.02)
    finally:
        worker.terminate()
        worker.wait(30)
    waits = sorted(
        (float(b) - float(a)) * 1000
        for a, b in (line.split() for line in log.read_text().splitlines())
    )
    return {
        "latency p50 ms": statistics.median(waits),
        "latency p99 ms": waits[int(len(waits) * 0.99) - 1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgres,mysql")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=1, help="runs per backend, one line each")
    args = parser.parse_args()
    for _ in range(args.reps):
        for backend in args.backends.split(","):
            figures = _one_run(backend, args.jobs)
            load = " / ".join(f"{n:.2f}" for n in os.getloadavg())
            print(backend, "  ".join(f"{k} {v:,.1f}" for k, v in figures.items()),
                  f"  (load {load})", flush=True)  # fmt: skip


def _one_run(backend: str, jobs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "postgres":
            schema = pg_backend.new_schema()
            try:
                return measure(pg_backend.schema_url(schema), jobs, Path(tmp))
            finally:
                pg_backend.drop_schema(schema)
        name = my_backend.new_database()
        try:
            return measure(my_backend.database_url(name), jobs, Path(tmp))
        finally:
            my_backend.drop_database(name)


if __name__ == "__main__":
    main()
