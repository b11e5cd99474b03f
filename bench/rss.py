"""Does a Conveyor worker stay flat? RSS of one worker (control process and executor child)
while it drains 100,000 no-op jobs, sampled every 10,000 jobs.

    python bench/rss.py [--n 100000] [--every 10000] [--url sqlite:///...]

The worker is warmed up with 20 jobs first (so the executor child exists), then its idle RSS is
read, then the jobs are queued in bulk and drained. Writes bench/results/rss-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import psutil
from harness.scenarios import Config, Runner, Target
from harness.servers import Servers, exclusive

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
MB = 1024 * 1024


def per_process(worker: object) -> dict[str, float]:
    """RSS in MB of each process of the worker tree, keyed by role."""
    out = {}
    for i, proc in enumerate(worker.tree()):  # type: ignore[attr-defined]
        try:
            out["control" if i == 0 else f"child{i}"] = proc.memory_info().rss / MB
        except psutil.Error:
            continue
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--every", type=int, default=10_000)
    p.add_argument("--url", default=f"sqlite:///{RESULTS / 'conveyor-rss.db'}")
    args = p.parse_args()
    lock = exclusive(str(RESULTS))
    servers = Servers()
    servers.probe()
    if servers.up.get("redis"):
        sys.exit(f"Redis is needed for the completion signal: {servers.up['redis']}")
    logs = RESULTS / "logs" / f"rss-{time.strftime('%Y%m%d-%H%M%S')}"
    logs.mkdir(parents=True, exist_ok=True)
    runner = Runner(servers, Config(), logs)
    backend = args.url.partition("://")[0].replace("postgresql", "postgres")
    target = Target("conveyor", backend, args.url, Path(sys.executable))
    target.info = runner.peer(target, "describe")
    runner.reset(target)
    runner.signal.clear()
    worker = runner.start(target, "default")
    samples = []
    try:
        runner.dispatch(target, 20, "noop", "single", 0.02)
        runner.signal.wait_for(20, worker.alive)
        time.sleep(1.0)
        samples.append({"jobs": 0, **per_process(worker)})
        runner.signal.clear()
        runner.dispatch(target, args.n, "noop", "bulk")
        for done in range(args.every, args.n + 1, args.every):
            got = runner.signal.wait_for(done, worker.alive)
            samples.append({"jobs": got, **per_process(worker)})
            print(json.dumps(samples[-1]), flush=True)
            if got < done:
                break
    finally:
        worker.stop()
        runner.reset(target)
        runner.signal.clear()
    totals = [sum(v for k, v in s.items() if k != "jobs") for s in samples]
    after_warm = totals[1:] or totals
    result = {
        "url": args.url, "samples": samples, "idle_total_mb": totals[0],
        "final_total_mb": totals[-1], "spread_after_warmup_mb": max(after_warm) - min(after_warm),
    }  # fmt: skip
    path = RESULTS / f"rss-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    del lock


if __name__ == "__main__":
    main()
