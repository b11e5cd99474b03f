"""What a running job can ask and do: its id and attempt, and release / delete / fail.

These calls record an intent rather than raise, as in Laravel: ``handle()`` may go on after
``self.release(30)`` and the executor acts on the intent once ``handle()`` returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Intent(enum.Enum):
    NONE = "none"
    RELEASE = "release"
    DELETE = "delete"
    FAIL = "fail"


@dataclass
class JobContext:
    job_id: str
    attempts: int
    queue: str
    connection: str
    intent: Intent = Intent.NONE
    release_delay: float = 0.0
    fail_reason: BaseException | None = None
    #: the batch the job belongs to (or fired a callback for), for ``Job.batch()``
    batch_id: str | None = None

    def release(self, delay: float) -> None:
        self.intent = Intent.RELEASE
        self.release_delay = max(0.0, float(delay))

    def delete(self) -> None:
        self.intent = Intent.DELETE

    def fail(self, exc: BaseException | str | None) -> None:
        self.intent = Intent.FAIL
        if isinstance(exc, BaseException):
            self.fail_reason = exc
        else:
            self.fail_reason = RuntimeError(exc or "job marked as failed")
