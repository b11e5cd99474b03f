"""The scenarios, each timed from outside the library through the shared completion signal.

Per target (a library on one backend) and repetition: dispatch (single, then bulk), drain at
default concurrency (of the jobs just dispatched) with the RSS after the drain, drain forced to
one job at a time, idle latency with the RSS of the idle worker, and 10 ms I/O-bound jobs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .servers import Servers, Signal
from .workers import WorkerProcess

BENCH = Path(__file__).resolve().parent.parent
SCENARIOS = ("dispatch", "drain", "drain_one", "latency", "io")


class BenchError(Exception):
    """A scenario that could not be measured; recorded in the results, the run goes on."""


@dataclass
class Config:
    n: int = 10_000
    n_io: int = 2_000
    reps: int = 3
    latency_samples: int = 500
    latency_pace: float = 0.020
    warmup: int = 20
    scenarios: tuple[str, ...] = SCENARIOS


@dataclass
class Target:
    adapter: str
    backend: str
    url: str
    python: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.adapter} ({self.backend})"


class Runner:
    def __init__(self, servers: Servers, config: Config, logs: Path) -> None:
        self.servers, self.config, self.logs = servers, config, logs
        self.signal = Signal(servers.signal_url)

    def env(self, target: Target) -> dict[str, str]:
        return {
            **os.environ,
            "BENCH_BROKER_URL": target.url,
            "BENCH_SIGNAL_URL": self.servers.signal_url,
            "CONVEYOR_CONNECTION": target.url,
            "PYTHONPATH": str(BENCH),
        }

    def peer(self, target: Target, command: str, *args: str, timeout: float = 900) -> Any:
        cmd = [str(target.python), str(BENCH / "peer.py"), target.adapter, target.backend]
        cmd += [target.url, command, *args]
        log = self.logs / f"{target.adapter}-{target.backend}.log"
        try:
            done = subprocess.run(
                cmd, env=self.env(target), cwd=BENCH, capture_output=True, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise BenchError(f"peer.py {command} timed out after {timeout:g}s") from None
        with log.open("a") as out:
            out.write(f"\n$ peer.py {command} {' '.join(args)}\n{done.stderr}{done.stdout}")
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"peer.py {command} failed: {tail}")
        return json.loads(lines[-1])

    def reset(self, target: Target) -> None:
        self.peer(target, "reset")
        self.servers.vacuum(target.backend)

    def dispatch(self, target: Target, n: int, kind: str, mode: str, pace: float = 0) -> float:
        args = ["--n", str(n), "--kind", kind, "--mode", mode]
        if pace:
            args += ["--pace", str(pace)]
        return float(self.peer(target, "dispatch", *args)["rate"])

    def start(self, target: Target, mode: str) -> WorkerProcess:
        cmd = target.info["worker"][mode]
        log = self.logs / f"{target.adapter}-{target.backend}.worker.log"
        return WorkerProcess(cmd, self.env(target), BENCH, log)

    def fill(self, target: Target, n: int, kind: str) -> None:
        """Queue jobs without timing them, in bulk where the library can."""
        self.reset(target)
        self.dispatch(target, n, kind, "bulk" if target.info["bulk"] else "single")

    def drain(self, target: Target, mode: str, n: int, keep: dict[str, Any], key: str) -> None:
        """Start a worker on ``n`` queued jobs; jobs/s from its start and from the first job."""
        self.signal.clear()
        worker = self.start(target, mode)
        try:
            got = self.signal.wait_for(n, worker.alive)
            if mode == "default" and key == "drain_default":
                keep["rss_after"], keep["processes"] = worker.rss()
        finally:
            worker.stop()
        if got < n:
            raise BenchError(f"{key}: only {got} of {n} jobs completed (see the worker log)")
        starts = sorted(started for _, started in self.signal.entries())
        first, last = starts[0], starts[n - 1]
        keep[key] = n / (last - worker.started)
        keep[f"{key}_steady"] = (n - 1) / (last - first) if last > first else 0.0

    def latency(self, target: Target, keep: dict[str, Any]) -> None:
        cfg = self.config
        self.reset(target)
        self.signal.clear()
        worker = self.start(target, "default")
        try:
            self.dispatch(target, cfg.warmup, "noop", "single", cfg.latency_pace)
            if self.signal.wait_for(cfg.warmup, worker.alive) < cfg.warmup:
                raise BenchError("latency: the warm-up jobs did not complete")
            time.sleep(1.0)
            keep["rss_idle"], keep["processes_idle"] = worker.rss()
            self.signal.clear()
            self.dispatch(target, cfg.latency_samples, "noop", "single", cfg.latency_pace)
            got = self.signal.wait_for(cfg.latency_samples, worker.alive, stall=30)
        finally:
            worker.stop()
        if got < cfg.latency_samples:
            raise BenchError(f"latency: only {got} of {cfg.latency_samples} jobs completed")
        delays = sorted((s - d) * 1000 for d, s in self.signal.entries())
        keep["latency_p50"] = statistics.median(delays)
        keep["latency_p99"] = delays[min(len(delays) - 1, int(len(delays) * 0.99))]

    def run_once(self, target: Target) -> dict[str, Any]:
        """One repetition of every selected scenario; a failing one is noted, the rest go on."""
        cfg, keep, errors = self.config, {}, {}
        steps = {
            "dispatch": lambda: self._dispatch_and_drain(target, keep),
            "drain_one": lambda: self._drain_one(target, keep),
            "latency": lambda: self.latency(target, keep),
            "io": lambda: self._io(target, keep),
        }
        for name, step in steps.items():
            if name not in cfg.scenarios and not (name == "dispatch" and "drain" in cfg.scenarios):
                continue
            try:
                step()
            except BenchError as exc:
                errors[name] = str(exc)
        if errors:
            keep["errors"] = errors
        return keep

    def n_for(self, target: Target, n: int) -> int:
        cap = target.info.get("max_n")
        return min(n, cap) if cap else n

    def _dispatch_and_drain(self, target: Target, keep: dict[str, Any]) -> None:
        n = self.n_for(target, self.config.n)
        keep["n"] = n
        self.reset(target)
        keep["dispatch_single"] = self.dispatch(target, n, "noop", "single")
        if target.info["bulk"]:
            self.reset(target)
            keep["dispatch_bulk"] = self.dispatch(target, n, "noop", "bulk")
        if "drain" in self.config.scenarios:
            self.drain(target, "default", n, keep, "drain_default")

    def _drain_one(self, target: Target, keep: dict[str, Any]) -> None:
        if target.info.get("one_at_a_time"):
            raise BenchError(target.info["one_at_a_time"])
        n = self.n_for(target, self.config.n)
        self.fill(target, n, "noop")
        self.drain(target, "one", n, keep, "drain_one")

    def _io(self, target: Target, keep: dict[str, Any]) -> None:
        n = self.n_for(target, self.config.n_io)
        self.fill(target, n, "io")
        self.drain(target, "default", n, keep, "io")
