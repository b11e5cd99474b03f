"""The demo's jobs: welcome email, CRM profile (flaky), Slack notification, PDF certificate.

The certificate job always fails, so the demo shows the failed store and ``conveyor retry``.
When ``CONVEYOR_DEMO_LOG`` is set, every outcome is appended to that file by event listeners
(the chapter's Queue::after / Queue::failing), which is how the demo draws its table.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from conveyor import (
    Job,
    JobExceptionOccurred,
    JobFailed,
    JobProcessed,
    JobReleased,
    current_app,
)
from conveyor.events import JobEvent


class SendWelcomeEmail(Job):
    user_id: int
    email: str
    queue = "demo"
    tries = 3

    def handle(self) -> None:
        time.sleep(0.2)


class CreateCrmProfile(Job):
    """The CRM answers 503 on the first attempt, as third-party APIs do."""

    user_id: int
    queue = "demo"
    tries = 3
    backoff = [1, 5]

    def handle(self) -> None:
        if self.attempts() < 2:
            raise ConnectionError("CRM answered 503 Service Unavailable")
        time.sleep(0.3)


class NotifySlack(Job):
    user_id: int
    channel: str = "#signups"
    queue = "demo"

    def handle(self) -> None:
        time.sleep(0.1)


class GenerateCertificate(Job):
    """Fails for good: the PDF template is missing, and no retry can fix that."""

    user_id: int
    queue = "demo"
    tries = 2
    backoff = 1

    def handle(self) -> None:
        time.sleep(0.2)
        raise FileNotFoundError("template certificates/welcome.html not found")

    def failed(self, exc: BaseException) -> None:
        _log({"hook": "failed", "job": "GenerateCertificate", "error": str(exc)})


def _log(entry: dict[str, Any]) -> None:
    path = os.environ.get("CONVEYOR_DEMO_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


def _record(outcome: str) -> Any:
    def listener(event: JobEvent) -> None:
        _log({"job": event.job_name.rpartition(":")[2], "id": event.job_id, "outcome": outcome,
              "attempts": event.attempts, "duration": getattr(event, "duration", None),
              "error": str(getattr(event, "exception", "") or ""), "at": time.time()})  # fmt: skip

    return listener


if os.environ.get("CONVEYOR_DEMO_LOG"):
    events = current_app().events
    events.listen(JobProcessed, _record("completed"))
    events.listen(JobReleased, _record("released"))
    events.listen(JobFailed, _record("failed"))
    events.listen(JobExceptionOccurred, _record("exception"))
