"""SIGTERM / SIGINT: the first asks for a graceful stop, the second abandons the running job."""

from __future__ import annotations

import signal
from types import FrameType


class StopSignals:
    def __init__(self) -> None:
        self.stopping = False
        self.aborting = False
        self.received: str | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        if self.stopping:
            self.aborting = True
        self.stopping = True
