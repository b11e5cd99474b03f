"""SIGTERM / SIGINT: the first asks for a graceful stop, the second abandons the running job.

The handlers only set flags. So that a worker waiting on its executor child reacts to a signal
at once rather than at its next periodic check, a signal also writes a byte to a pipe
(``signal.set_wakeup_fd``) that the wait watches: ``wakeup_fd``.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self) -> None:
        self.stopping = False
        self.aborting = False
        self.received: str | None = None
        self.wakeup_fd: int | None = None
        self._write_fd: int | None = None
        self._previous: list[Any] = []
        self._previous_wakeup = -1

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (main thread only), remembering what was there."""
        self._previous = [signal.signal(sig, self._handle) for sig in _SIGNALS]
        self.wakeup_fd, self._write_fd = os.pipe()
        os.set_blocking(self.wakeup_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)

    def uninstall(self) -> None:
        if self._write_fd is None or self.wakeup_fd is None:
            return
        signal.set_wakeup_fd(self._previous_wakeup)
        for sig, handler in zip(_SIGNALS, self._previous, strict=True):
            signal.signal(sig, handler)
        os.close(self.wakeup_fd)
        os.close(self._write_fd)
        self.wakeup_fd = self._write_fd = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        if self.stopping:
            self.aborting = True
        self.stopping = True


def drain(fd: int) -> None:
    """Empty a wakeup pipe so that waiting on it blocks again until the next signal."""
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass
