"""Not a test: throughput and latency of the Redis driver on this machine, printed as a table.

    python -m tests.integration.redis_measure [--jobs 10000] [--in-process]

Runs against a private ``redis-server`` (no persistence) in a temporary folder: single and bulk
dispatch jobs/s, drain jobs/s of no-op jobs with one ``conveyor work --stop-when-empty`` worker
(its start-up, timed on an empty queue, is subtracted), and dispatch-to-start latency with one
idle worker. Figures vary from run to run; they are for reports, never for assertions.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from conveyor import Conveyor, dispatch_many, set_app
from conveyor.config import load_settings

from .harness import conveyor_command, process_env
from .redis_jobs import Nothing, Stamp
from .redis_server import RedisServer

APP = "tests.integration.redis_jobs"


def work(folder: Path, url: str, *args: str) -> subprocess.Popen[bytes]:
    env = process_env({"CONVEYOR_CONNECTION": url})
    return subprocess.Popen(
        conveyor_command("work", *args, app=APP), cwd=folder, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def timed_drain(folder: Path, url: str, extra: list[str]) -> float:
    started = time.perf_counter()
    work(folder, url, "--stop-when-empty", *extra).wait()
    return time.perf_counter() - started


def measure(folder: Path, jobs: int, extra: list[str]) -> dict[str, float]:
    server = RedisServer(folder / "redis").start()
    try:
        app = Conveyor(load_settings(folder, env={"CONVEYOR_CONNECTION": server.url}))
        set_app(app)
        single = min(jobs, 2000)
        t = time.perf_counter()
        for _ in range(single):
            Nothing().dispatch()
        out = {"single dispatch jobs/s": single / (time.perf_counter() - t)}
        empty = timed_drain(folder, server.url, extra)
        t = time.perf_counter()
        dispatch_many(Nothing() for _ in range(jobs))
        out["bulk dispatch jobs/s"] = jobs / (time.perf_counter() - t)
        out["worker start-up s"] = empty
        out["drain jobs/s"] = (jobs + single) / (timed_drain(folder, server.url, extra) - empty)
        out.update(idle_latency(folder, server.url, extra))
        app.close()
        return out
    finally:
        server.stop()


def idle_latency(folder: Path, url: str, extra: list[str], samples: int = 300) -> dict[str, float]:
    worker = work(folder, url, *extra)
    log = folder / "latency.log"
    try:
        Stamp(dispatched_at=time.time()).dispatch()
        while not log.exists():
            time.sleep(0.05)
        for _ in range(samples):
            time.sleep(0.02)
            Stamp(dispatched_at=time.time()).dispatch()
        while len(log.read_text().splitlines()) < samples + 1:
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(10)
    values = sorted(float(v) * 1000 for v in log.read_text().split()[1:])
    cuts = statistics.quantiles(values, n=100)
    return {"idle latency p50 ms": cuts[49], "idle latency p99 ms": cuts[98]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--in-process", action="store_true", help="workers run jobs in-process")
    args = parser.parse_args()
    extra = ["--in-process"] if args.in_process else []
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(Path(tmp), args.jobs, extra)
    set_app(None)
    for name, value in results.items():
        print(f"{name:<26}{value:>12,.2f}")


if __name__ == "__main__":
    main()
