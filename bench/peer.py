"""Producer and set-up side of one library, run inside that library's virtual environment.

    python peer.py ADAPTER BACKEND URL describe
    python peer.py ADAPTER BACKEND URL setup | reset | teardown
    python peer.py ADAPTER BACKEND URL dispatch --n N --kind noop|io --mode single|bulk [--pace S]

Prints one JSON object on its last line. ``dispatch`` times only the N dispatch calls (the
client is connected first), so start-up and imports are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapters.base import BROKER_URL_ENV, Adapter


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _dispatch(adapter: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    await _maybe(adapter.setup())
    n, kind = args.n, args.kind
    if args.mode == "bulk":
        ts = [time.time()] * n
        started = time.perf_counter()
        for chunk in range(0, n, args.chunk):
            await _maybe(adapter.dispatch_bulk(kind, ts[chunk : chunk + args.chunk]))
        elapsed = time.perf_counter() - started
    else:
        started = time.perf_counter()
        for i in range(n):
            if args.pace:
                await _pace(started + i * args.pace)
            await _maybe(adapter.dispatch_one(kind, time.time()))
        elapsed = time.perf_counter() - started
    await _maybe(adapter.close())
    return {"n": n, "elapsed": elapsed, "rate": n / elapsed if elapsed > 0 else 0.0}


async def _pace(until: float) -> None:
    delay = until - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay) if delay > 0.002 else time.sleep(delay)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    os.environ[BROKER_URL_ENV] = args.url
    module = importlib.import_module(f"adapters.{args.adapter}_adapter")
    adapter: Adapter = module.Adapter(args.backend, args.url)
    if args.command == "describe":
        return {
            **adapter.describe(),
            "backends": adapter.available_backends(),
            "versions": _versions(adapter.packages),
            "python": sys.version.split()[0],
        }
    if args.command == "dispatch":
        return await _dispatch(adapter, args)
    if args.command == "setup":
        await _maybe(adapter.setup())
    elif args.command == "reset":
        await _maybe(adapter.reset())
    elif args.command == "teardown":
        await _maybe(adapter.teardown())
    await _maybe(adapter.close())
    return {"ok": True}


def _versions(packages: tuple[str, ...]) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "?"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("adapter")
    parser.add_argument("backend")
    parser.add_argument("url")
    parser.add_argument("command", choices=["describe", "setup", "reset", "teardown", "dispatch"])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--kind", choices=["noop", "io"], default="noop")
    parser.add_argument("--mode", choices=["single", "bulk"], default="single")
    parser.add_argument("--pace", type=float, default=0.0, help="seconds between dispatches")
    parser.add_argument("--chunk", type=int, default=1000, help="jobs per bulk call")
    args = parser.parse_args()
    result = asyncio.run(_main(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
