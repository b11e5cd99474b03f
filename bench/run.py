"""Conveyor against its peers, side by side, in one run: ``make bench`` / ``make bench-full``.

    python bench/run.py                 # the full table: N=10,000, 3 repetitions
    python bench/run.py --quick         # a few minutes: small N, 1 repetition, fewer scenarios
    python bench/run.py --only conveyor,huey --backends sqlite,redis --scenarios drain,latency

Writes bench/results/<time>.{md,json,svg} and latest.{md,json,svg}. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import chart, report, venvs
from harness.scenarios import SCENARIOS, BenchError, Config, Runner, Target
from harness.servers import Servers, exclusive

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
QUICK = Config(n=500, n_io=200, reps=1, latency_samples=100,
               scenarios=("dispatch", "drain", "latency", "io"))  # fmt: skip


def discover() -> list[str]:
    files = (BENCH / "adapters").glob("*_adapter.py")
    names = sorted(p.stem.removesuffix("_adapter") for p in files)
    return ["conveyor", *[n for n in names if n != "conveyor"]]


def machine(servers: Servers) -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, text=True,
                            capture_output=True, check=False).stdout.strip()  # fmt: skip
    return {
        "cpu": cpu, "cores": os.cpu_count(), "load_start": list(os.getloadavg()),
        "python": platform.python_version(), "platform": platform.platform(),
        "servers": dict(servers.versions), "conveyor_commit": commit or "?",
    }  # fmt: skip


def compile_sources() -> None:
    """Compile Conveyor's package and the benchmark's own modules to bytecode first.

    pip compiles every peer's package when it installs it into its virtual environment, but an
    editable install of Conveyor (the project's own ``.venv``) leaves its sources to be compiled
    when first imported, and with ``PYTHONDONTWRITEBYTECODE`` set they are compiled again at
    every start: about 70 ms more per worker start on a 2-core machine, counted in the drain.
    """
    import conveyor

    compileall.compile_dir(Path(conveyor.__file__).parent, quiet=1)
    compileall.compile_dir(BENCH, maxlevels=1, quiet=1)  # not the peers' venvs below it


def targets(runner: Runner, names: list[str], backends: set[str] | None,
            skipped: dict[str, str], log: Path) -> list[Target]:  # fmt: skip
    found: list[Target] = []
    for name in names:
        why = venvs.ensure(name, log)
        if why:
            skipped[name] = why
            continue
        probe = Target(name, "", "", venvs.python_for(name))
        try:
            described = runner.peer(probe, "describe", timeout=120)
        except BenchError as exc:
            skipped[name] = str(exc)
            continue
        for backend, reason in described["backends"].items():
            label = f"{name} ({backend})"
            if backends is not None and backend not in backends:
                continue
            reason = reason or runner.servers.up.get(backend, "unknown backend")
            if reason:
                skipped[label] = reason
                continue
            url = runner.servers.url(backend, str(RESULTS / "conveyor-bench.db"))
            target = Target(name, backend, url, probe.python)
            try:
                target.info = runner.peer(target, "describe", timeout=120)
                runner.peer(target, "setup", timeout=300)
            except BenchError as exc:
                skipped[label] = str(exc)
                continue
            found.append(target)
    return found


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="small N, 1 repetition, fewer scenarios")
    p.add_argument("--only", help="comma list of libraries (adapters) to run")
    p.add_argument("--backends", help="comma list of backends: sqlite,redis,postgres,mysql")
    p.add_argument("--scenarios", help=f"comma list of: {','.join(SCENARIOS)}")
    p.add_argument("--n", type=int, help="no-op jobs per drain and dispatch")
    p.add_argument("--n-io", type=int, help="jobs in the I/O-bound drain")
    p.add_argument("--reps", type=int, help="repetitions (the table shows the median)")
    p.add_argument("--latency-samples", type=int, help="jobs in the latency scenario")
    p.add_argument("--render", metavar="JSON", help="only rewrite the .md and .svg of a run")
    return p.parse_args()


def config(args: argparse.Namespace) -> Config:
    cfg = QUICK if args.quick else Config()
    for key in ("n", "n_io", "reps", "latency_samples"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    if args.scenarios:
        chosen = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
        unknown = set(chosen) - set(SCENARIOS)
        if unknown:
            sys.exit(f"unknown scenario {sorted(unknown)[0]!r}; known: {', '.join(SCENARIOS)}")
        cfg.scenarios = chosen
    return cfg


def run(cfg: Config, args: argparse.Namespace) -> dict[str, Any]:
    lock = exclusive(str(RESULTS))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    logs = RESULTS / "logs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    servers = Servers()
    servers.probe()
    if servers.up.get("redis"):
        sys.exit(f"Redis is needed for the completion signal ({servers.signal_url}): "
                 f"{servers.up['redis']}")  # fmt: skip
    runner = Runner(servers, cfg, logs)
    names = discover()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",")]
        names = [n for n in names if n in wanted]
    backends = set(args.backends.split(",")) if args.backends else None
    skipped: dict[str, str] = {}
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(servers),
        "config": vars(cfg) | {"scenarios": list(cfg.scenarios)}, "targets": {},
        "skipped": skipped,
    }  # fmt: skip
    servers.create_databases()
    compile_sources()
    found: list[Target] = []
    try:
        found = targets(runner, names, backends, skipped, logs / "venvs.log")
        for t in found:
            results["targets"][t.label] = {"backend": t.backend, "info": t.info, "reps": []}
        for rep in range(cfg.reps):
            for t in found:
                began = time.monotonic()
                measured = runner.run_once(t)
                results["targets"][t.label]["reps"].append(measured)
                print(f"[{rep + 1}/{cfg.reps}] {t.label}: {_brief(measured)} "
                      f"({time.monotonic() - began:.0f}s)", flush=True)  # fmt: skip
            if rep + 1 < cfg.reps:
                write(results, stamp, quiet=True)
    finally:
        for t in found:
            try:
                runner.peer(t, "teardown", timeout=120)
            except BenchError as exc:
                print(f"teardown of {t.label}: {exc}", file=sys.stderr)
        servers.drop_databases()
    write(results, stamp)
    del lock
    return results


def _brief(measured: dict[str, Any]) -> str:
    keys = ("dispatch_single", "dispatch_bulk", "drain_default", "drain_one", "latency_p50", "io")
    parts = [f"{k}={measured[k]:,.1f}" for k in keys if k in measured]
    parts += [f"{k} FAILED" for k in measured.get("errors", {})]
    return " ".join(parts)


def _subtitle(results: dict[str, Any]) -> str:
    m, c = results["machine"], results["config"]
    return (f"{m['cpu']}, {m['cores']} cores; N={c['n']:,}, median of {c['reps']}; "
            f"{results['started']}")  # fmt: skip


def write(results: dict[str, Any], stamp: str, quiet: bool = False) -> None:
    """Write the files; called after every repetition too, so a stopped run keeps its data."""
    results["machine"]["load_end"] = list(os.getloadavg())
    for t in results["targets"].values():
        t["summary"] = report.summarize(t["reps"])
    RESULTS.mkdir(exist_ok=True)
    summaries = {label: t["summary"] for label, t in results["targets"].items()}
    # commands are recorded relative to the checkout: the file says nothing of where it lived
    checkout = f"{BENCH.parent}/"
    files = {
        "json": json.dumps(results, indent=2, default=str).replace(checkout, ""),
        "md": report.markdown(results),
        "svg": chart.render(summaries, _subtitle(results)),
    }
    for ext, text in files.items():
        path = RESULTS / f"{stamp}.{ext}"
        path.write_text(text)
        shutil.copyfile(path, RESULTS / f"latest.{ext}")
    if not quiet:
        print(f"\nwrote bench/results/{stamp}.md, .json, .svg (and latest.*)\n")
        print(files["md"])


def render(path: Path) -> None:
    results = json.loads(path.read_text())
    for t in results["targets"].values():
        t["summary"] = report.summarize(t["reps"])
    summaries = {label: t["summary"] for label, t in results["targets"].items()}
    path.with_suffix(".md").write_text(report.markdown(results))
    path.with_suffix(".svg").write_text(chart.render(summaries, _subtitle(results)))
    print(f"wrote {path.with_suffix('.md')} and .svg")


def main() -> None:
    args = parse()
    if args.render:
        render(Path(args.render))
        return
    run(config(args), args)


if __name__ == "__main__":
    main()
