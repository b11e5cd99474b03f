"""A job claimed from an SQL table: every write on it is fenced by its token."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..base import FailedRecord, Message

log = logging.getLogger("conveyor.database")

if TYPE_CHECKING:
    from .driver import DatabaseDriver


class SQLReservation:
    __slots__ = ("_driver", "attempts", "id", "payload", "queue", "token")

    def __init__(
        self, driver: DatabaseDriver, id: str, queue: str, payload: bytes, attempts: int, token: str
    ) -> None:
        self._driver = driver
        self.id = id
        self.queue = queue
        self.payload = payload
        self.attempts = attempts
        self.token = token

    def _update(self, statement: str, delay: float, *params: Any) -> bool:
        """Run ``statement`` with the server's time plus ``delay`` as its first parameter."""

        def update(cur: Any) -> bool:
            at = self._driver.dialect.now(self._driver._connection()) + delay
            cur.execute(self._driver.sql(statement), (at, *params))
            return bool(cur.rowcount == 1)

        return self._driver.run(update, durable=False)

    def ack(self, successors: Sequence[Message] = ()) -> bool:
        def delete(cur: Any) -> bool:
            cur.execute(
                self._driver.sql("DELETE FROM conveyor_jobs WHERE id = ? AND token = ?"),
                (self.id, self.token),
            )
            if cur.rowcount != 1:
                return False
            if successors:
                self._driver.insert_messages(cur, successors)
            return True

        # successors are dispatches: they must be on disk when this returns
        return self._driver.run(delete, durable=bool(successors))

    def ack_and_reserve(
        self, queues: Sequence[str], lease: float
    ) -> tuple[bool, SQLReservation | None]:
        """Acknowledge and claim the next job in one transaction: one commit per job."""
        acked, _, claimed = self._driver.take(queues, lease, (self.id, self.token))
        return acked, claimed

    def begin(self) -> bool:
        """Count the attempt of a prefetched job that starts now (see ``prefetch``)."""
        started = (self.id, self.token, self.attempts)
        return self._driver.run(lambda cur: self._driver.begin_in(cur, started), durable=False)

    def release(self, delay: float, payload: bytes | None = None) -> bool:
        if payload is None:
            return self._update(
                "UPDATE conveyor_jobs SET available_at = ?, reserved_at = NULL, token = NULL"
                " WHERE id = ? AND token = ?",
                delay, self.id, self.token,
            )  # fmt: skip
        return self._update(
            "UPDATE conveyor_jobs SET available_at = ?, reserved_at = NULL, token = NULL,"
            " payload = ? WHERE id = ? AND token = ?",
            delay, payload.decode(), self.id, self.token,
        )  # fmt: skip

    def extend(self, seconds: float) -> bool:
        return self._update(
            "UPDATE conveyor_jobs SET available_at = ? WHERE id = ? AND token = ?",
            seconds, self.id, self.token,
        )  # fmt: skip

    def fail(self, record: FailedRecord) -> bool:
        def move(cur: Any) -> bool:
            cur.execute(
                self._driver.sql("DELETE FROM conveyor_jobs WHERE id = ? AND token = ?"),
                (self.id, self.token),
            )
            if cur.rowcount != 1:
                return False
            self._driver.failed.insert(cur, record)
            return True

        return self._driver.run(move, durable=False)
