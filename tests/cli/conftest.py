"""Run the installed ``conveyor`` console script in a throwaway project, as a user would.

Each test gets a project folder (the working directory of every command) with a small job
module on PYTHONPATH, and a ``Project`` helper that runs commands, seeds the queue through the
real driver and reads what the jobs wrote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, load_settings
from conveyor.drivers.base import Driver, FailedRecord, Message
from conveyor.envelope import Envelope, encode, new_job_id

CONVEYOR = shutil.which("conveyor", path=str(Path(sys.executable).parent))

JOBS = '''
"""Jobs the CLI tests run; each appends its tag to ran.log in the working directory."""
import time
from pathlib import Path

from conveyor import Job


def note(line: str) -> None:
    with Path("ran.log").open("a") as fh:
        fh.write(line + "\\n")


class Ok(Job):
    tag: str = ""

    def handle(self) -> None:
        note(f"ok {self.tag}")


class Boom(Job):
    def handle(self) -> None:
        raise RuntimeError("exploded on purpose")


class Slow(Job):
    seconds: float = 1.0
    tag: str = ""

    def handle(self) -> None:
        Path("started.flag").write_text(self.tag)
        time.sleep(self.seconds)
        note(f"slow {self.tag}")
'''

CONFIG = """
app = ["clijobs"]

[connections.database]
url = "sqlite:///conveyor.db"
retry_after = 3
"""


class Project:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self._app: Conveyor | None = None

    def run(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert CONVEYOR is not None, "the conveyor console script is not installed in this venv"
        return subprocess.run(
            [CONVEYOR, *args], cwd=self.root, env={**self.env, **(env or {})},
            capture_output=True, text=True, input=input, timeout=60,
        )  # fmt: skip

    def start(self, *args: str) -> subprocess.Popen[str]:
        assert CONVEYOR is not None
        return subprocess.Popen(
            [CONVEYOR, *args], cwd=self.root, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    @property
    def driver(self) -> Driver:
        if self._app is None:
            self._app = Conveyor(load_settings(self.root, env={}))
        return self._app.driver()

    def enqueue(self, job: str, queue: str = "default", delay: float = 0.0, **args: Any) -> str:
        env = Envelope(id=new_job_id(), job=f"clijobs:{job}", args=args, queue=queue)
        self.driver.push(Message(env.id, queue, encode(env), delay))
        return env.id

    def add_failed(self, job: str = "Boom", queue: str = "default", age: float = 0.0,
                   error: str = "RuntimeError: exploded on purpose") -> FailedRecord:  # fmt: skip
        env = Envelope(id=new_job_id(), job=f"clijobs:{job}", args={}, queue=queue)
        trace = f"Traceback (most recent call last):\n{error}"
        record = FailedRecord(env.id, "database", queue, encode(env), trace, time.time() - age)
        self.driver.failed.record(record)
        stored = self.driver.failed.get(env.id)
        assert stored is not None
        return stored

    def ran(self) -> list[str]:
        log = self.root / "ran.log"
        return log.read_text().splitlines() if log.exists() else []

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Project]:
    root, lib = tmp_path / "project", tmp_path / "lib"
    root.mkdir()
    lib.mkdir()
    (lib / "clijobs.py").write_text(textwrap.dedent(JOBS))
    (root / "conveyor.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(PYTHONPATH=str(lib), COLUMNS="200", NO_COLOR="1", PYTHONUNBUFFERED="1")
    helper = Project(root, env)
    yield helper
    helper.close()
