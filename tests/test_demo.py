"""`make demo` as a new user meets it: the registration scenario end to end on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from conveyor import Conveyor
from conveyor.config import load_settings


def test_demo_runs_the_four_jobs_and_leaves_one_failure(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["COLUMNS"] = "200"
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    done = subprocess.run(
        [sys.executable, "-m", "conveyor.demo"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name in ("SendWelcomeEmail", "CreateCrmProfile", "NotifySlack", "GenerateCertificate"):
        assert name in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 4}
    assert "completed" in rows["SendWelcomeEmail"]
    assert "completed" in rows["CreateCrmProfile"] and "│ 2 " in rows["CreateCrmProfile"]
    assert "failed" in rows["GenerateCertificate"] and "│ 2 " in rows["GenerateCertificate"]
    assert "failed() ran 1 time(s)" in out
    assert "conveyor retry all" in out

    app = Conveyor(load_settings(project, env={}))
    try:
        records = app.driver().failed.page()
        assert len(records) == 1
        assert "GenerateCertificate" in records[0].payload.decode()
        assert "template certificates/welcome.html not found" in records[0].exception
        assert app.driver().size("demo").total == 0
    finally:
        app.close()
    leftovers = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not leftovers, f"the demo left processes running: {leftovers}"
