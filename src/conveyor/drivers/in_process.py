"""The control plane of a connection that keeps nothing between processes: the sync
connection, and the recording fake of ``conveyor.testing``. A restart mark held in memory, no
heartbeats, no workers to list, no schema to migrate, nothing to close."""

from __future__ import annotations

import time

from .base import WorkerInfo


class InProcessControl:
    _restart: float | None = None

    def request_restart(self) -> float:
        self._restart = time.time()
        return self._restart

    def restart_requested_at(self) -> float | None:
        return self._restart

    def heartbeat(self, info: WorkerInfo) -> None:
        pass

    def forget_worker(self, worker_id: str) -> None:
        pass

    def workers(self, seen_within: float) -> list[WorkerInfo]:
        return []

    def migrate(self) -> None:
        pass

    def close(self) -> None:
        pass
