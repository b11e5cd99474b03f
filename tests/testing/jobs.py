"""Jobs and callbacks the tests of ``conveyor.testing`` dispatch, run and drain in-process; each
run appends to ``RAN``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from conveyor import Batch, Job, JobFailure

RAN: list[str] = []


class SendWelcomeEmail(Job):
    user_id: int

    def handle(self) -> None:
        RAN.append(f"welcome {self.user_id}")


class NotifySlack(Job):
    user_id: int

    def handle(self) -> None:
        RAN.append(f"slack {self.user_id}")


class Register(Job):
    """Dispatches two jobs from inside its own handle()."""

    user_id: int

    def handle(self) -> None:
        RAN.append(f"register {self.user_id}")
        SendWelcomeEmail(user_id=self.user_id).dispatch()
        NotifySlack(user_id=self.user_id).on_queue("slack").dispatch()


class Step(Job):
    key: str
    boom: bool = False

    def handle(self) -> None:
        RAN.append(self.key)
        if self.boom:
            raise ValueError(f"{self.key} exploded")


class Flaky(Job):
    """Fails its first attempt, succeeds on the second."""

    key: str
    tries = 3
    backoff = [10, 60]

    def handle(self) -> None:
        RAN.append(f"{self.key} attempt {self.attempts()}")
        if self.attempts() == 1:
            raise RuntimeError(f"{self.key}: the first attempt fails")


class Charge(Job):
    """Fails every attempt; three tries with a backoff."""

    order_id: int
    tries = 3
    backoff = [10, 30]

    def handle(self) -> None:
        RAN.append(f"charge {self.order_id}")
        raise ValueError(f"card declined for order {self.order_id}")


class Releases(Job):
    seconds: float

    def handle(self) -> None:
        self.release(self.seconds)


class Deletes(Job):
    def handle(self) -> None:
        self.delete()


class Fails(Job):
    why: str

    def handle(self) -> None:
        self.fail(self.why)


class AsyncStep(Job):
    key: str

    async def handle(self) -> None:
        await asyncio.sleep(0)
        RAN.append(f"async {self.key}")


class Tag:
    """Middleware that records around the job it wraps."""

    def handle(self, job: Job, call_next: Callable[[Job], Any]) -> Any:
        RAN.append("middleware before")
        result = call_next(job)
        RAN.append("middleware after")
        return result


class Wrapped(Job):
    def middleware(self) -> list[Any]:
        return [Tag()]

    def handle(self) -> None:
        RAN.append("wrapped")


class Forever(Job):
    """Dispatches itself again: a drain must give up on it."""

    def handle(self) -> None:
        Forever().dispatch()


class Notify(Job):
    """A Job used as a batch callback."""

    tag: str

    def handle(self) -> None:
        batch = self.batch()
        RAN.append(f"notify {self.tag} {batch.processed_jobs if batch else None}")


def on_then(batch: Batch) -> None:
    RAN.append(f"then {batch.processed_jobs}/{batch.total_jobs}")


def on_catch(batch: Batch, error: JobFailure) -> None:
    RAN.append(f"catch {error}")


def on_finally(batch: Batch) -> None:
    RAN.append(f"finally failed={batch.failed_jobs} cancelled={batch.cancelled()}")


def on_chain_failed(error: JobFailure) -> None:
    RAN.append(f"chain failed: {error}")
