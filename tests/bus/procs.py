"""Real ``conveyor work`` processes for the crash tests, started in the test's project folder."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[2]
WORK = ("work", "--sleep", "0.2", "--tries", "20", "--lease", "1", "--timeout", "10")


class Pool:
    """``size`` workers, each restarted after it is killed; none outlives the ``pool`` block."""

    def __init__(self, folder: Path, size: int) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self.kills = 0
        #: each SIGKILL of a whole worker: when, and the pids it took (control and executor)
        self.whole_kills: list[tuple[float, frozenset[int]]] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO_ROOT), env.get("PYTHONPATH"))))
        self.env = env
        for _ in range(size):
            self.procs.append(self._start())

    def _start(self) -> subprocess.Popen[bytes]:
        log = (self.folder / f"worker-{len(self.procs) + self.kills}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "conveyor", *WORK], cwd=self.folder, env=self.env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip

    def kill_one(self, rng: random.Random) -> None:
        """SIGKILL a worker (its control process, or the executor child running a job)."""
        i = rng.randrange(len(self.procs))
        proc = self.procs[i]
        children = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        if children and rng.random() < 0.3:
            children[0].kill()  # the job's process dies: the worker records a lost attempt
        else:
            proc.kill()
            proc.wait(10)
            self.whole_kills.append(
                (time.time(), frozenset({proc.pid, *(c.pid for c in children)}))
            )
            self.procs[i] = self._start()
        self.kills += 1

    def stop(self) -> None:
        for proc in self.procs:
            family = []
            with suppress(psutil.NoSuchProcess):
                family = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            for kid in family:
                try:
                    kid.kill()
                except psutil.NoSuchProcess:
                    continue


@contextmanager
def pool(folder: Path, size: int) -> Iterator[Pool]:
    workers = Pool(folder, size)
    try:
        yield workers
    finally:
        workers.stop()


def chaos(
    workers: Pool, done: Callable[[], bool], kill_while: Callable[[], bool], timeout: float
) -> None:
    """Kill a random worker every 0.05-0.25 s while ``kill_while()``; return once ``done()``."""
    rng = random.Random(4)
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text()[-2000:] for p in workers.folder.glob("worker-*.log"))
            raise AssertionError(f"not done within {timeout:g}s; worker logs:\n{logs}")
        if kill_while():
            workers.kill_one(rng)
        time.sleep(rng.uniform(0.05, 0.25))
