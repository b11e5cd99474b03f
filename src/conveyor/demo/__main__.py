"""``python -m conveyor.demo`` (``make demo``): dispatch four jobs, run a real worker, report.

It uses the embedded SQLite default (``conveyor.db`` in this folder) and a real ``conveyor work``
process, then stops the worker with SIGTERM, so nothing is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from conveyor import Conveyor, dispatch_many, set_app

from .jobs import CreateCrmProfile, GenerateCertificate, NotifySlack, SendWelcomeEmail

console = Console()
APP = "conveyor.demo.jobs"


def main() -> int:
    app = Conveyor()
    set_app(app)
    driver = app.driver()
    driver.clear("demo")
    console.print("[bold]A user registers.[/] The request saves the user and queues four jobs.")
    started = time.perf_counter()
    ids = dispatch_many([
        SendWelcomeEmail(user_id=42, email="ada@example.com"),
        CreateCrmProfile(user_id=42),
        NotifySlack(user_id=42),
        GenerateCertificate(user_id=42),
    ])  # fmt: skip
    answered = (time.perf_counter() - started) * 1000
    console.print(f"Response sent after {answered:.1f} ms; {len(ids)} jobs wait in queue 'demo'.\n")
    log = Path(tempfile.mkstemp(prefix="conveyor-demo-", suffix=".jsonl")[1])
    worker_log = Path(tempfile.mkstemp(prefix="conveyor-demo-", suffix=".log")[1])
    try:
        entries = _run_worker(app, log, worker_log)
        console.print(
            "[dim]" + worker_log.read_text(encoding="utf-8").rstrip() + "[/]", soft_wrap=True
        )
    finally:
        app.close()
        log.unlink(missing_ok=True)
        worker_log.unlink(missing_ok=True)
    _report(entries, ids, time.time() - (time.perf_counter() - started))
    return 0


def _run_worker(app: Conveyor, log: Path, worker_log: Path) -> list[dict[str, object]]:
    env = {**os.environ, "CONVEYOR_DEMO_LOG": str(log)}
    cmd = [
        sys.executable,
        "-m",
        "conveyor",
        "--app",
        APP,
        "work",
        "--queue",
        "demo",
        "--sleep",
        "1",
    ]
    console.print(f"[dim]$ conveyor --app {APP} work --queue demo[/]")
    with worker_log.open("w") as out:
        worker = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            if app.driver().size("demo").total == 0:
                break
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return [json.loads(line) for line in lines]


def _report(entries: list[dict[str, object]], ids: list[str], dispatched_at: float) -> None:
    table = Table(title="\nWhat the worker did")
    for col in ("Job", "Attempts", "Outcome", "Done after", "Note"):
        table.add_column(col)
    final = {e["id"]: e for e in entries if e.get("outcome") in ("completed", "failed")}
    for job_id in ids:
        entry = final.get(job_id)
        if entry is None:
            table.add_row(job_id, "-", "[yellow]not run[/]", "-", "is a worker running?")
            continue
        outcome = str(entry["outcome"])
        style = {"completed": "green", "failed": "red"}.get(outcome, "yellow")
        errors = [
            str(e["error"])
            for e in entries
            if e.get("id") == job_id and e["outcome"] == "exception"
        ]
        note = ("; ".join(dict.fromkeys(errors)) + f" ({len(errors)}x)") if errors else ""
        done_after = float(str(entry["at"])) - dispatched_at
        table.add_row(
            str(entry["job"]), str(entry["attempts"]), f"[{style}]{outcome}[/]",
            f"{done_after:.1f} s", note,
        )  # fmt: skip
    console.print(table)
    hooks = sum(1 for e in entries if e.get("hook") == "failed")
    console.print(
        f"GenerateCertificate.failed() ran {hooks} time(s): once, when it failed for good."
    )
    print(
        "\nThe failed job is in the failed store (conveyor.db). Inspect it and retry it:\n"
        "  .venv/bin/conveyor failed\n"
        "  .venv/bin/conveyor retry all\n"
        f"  .venv/bin/conveyor --app {APP} work --queue demo --stop-when-empty\n"
        "  .venv/bin/conveyor status"
    )


if __name__ == "__main__":
    raise SystemExit(main())
