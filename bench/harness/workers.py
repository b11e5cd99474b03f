"""Starting a library's worker the way a user would, measuring its memory, and stopping it.

A worker gets its own session (process group), so that whatever it forks can be found and,
if it does not stop on SIGTERM within the grace period, killed. The harness never leaves a
process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil


class WorkerProcess:
    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.cmd = cmd
        self._log = log.open("ab")
        self._log.write(f"\n$ {' '.join(cmd)}\n".encode())
        self._log.flush()
        self.started = time.time()
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self._known: dict[int, psutil.Process] = {}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for p in procs:
            self._known[p.pid] = p
        return procs

    def rss(self) -> tuple[int, int]:
        """Resident memory of the worker and every process under it (bytes), and their count.

        Pages shared after a fork are counted once per process, as ``ps`` and ``top`` do.
        """
        total, count = 0, 0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
                count += 1
        return total, count

    def stop(self, grace: float = 8.0) -> None:
        """SIGTERM as a process manager would, then SIGKILL whatever is left of the tree."""
        self.tree()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._log.write(b"\n[bench] worker did not stop on SIGTERM; killed\n")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for p in self._known.values():
            with contextlib.suppress(psutil.Error):
                if p.is_running():
                    p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._log.close()
