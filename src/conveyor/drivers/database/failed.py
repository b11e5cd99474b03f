"""The failed-jobs store in the same database as the queue, so a fail-move is one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import FailedRecord, failed_id

if TYPE_CHECKING:
    from .driver import DatabaseDriver

_COLUMNS = "id, uuid, connection, queue, payload, exception, failed_at"


def _row(r: Any) -> FailedRecord:
    payload = r[4].encode() if isinstance(r[4], str) else bytes(r[4])
    return FailedRecord(
        uuid=str(r[1]), connection=str(r[2]), queue=str(r[3]), payload=payload,
        exception=str(r[5]), failed_at=float(r[6]), id=int(r[0]),
    )  # fmt: skip


class SQLFailedStore:
    def __init__(self, driver: DatabaseDriver) -> None:
        self._driver = driver

    def insert(self, cur: Any, record: FailedRecord) -> None:
        """Write inside the caller's transaction (the fail-move)."""
        cur.execute(
            self._driver.sql("DELETE FROM conveyor_failed_jobs WHERE uuid = ?"),
            (record.uuid,),
        )
        cur.execute(
            self._driver.sql(
                "INSERT INTO conveyor_failed_jobs (uuid, connection, queue, payload, exception,"
                " failed_at) VALUES (?, ?, ?, ?, ?, ?)"
            ),
            (record.uuid, record.connection, record.queue, record.payload.decode(),
             record.exception, record.failed_at),
        )  # fmt: skip

    def record(self, record: FailedRecord) -> None:
        self._driver.run(lambda cur: self.insert(cur, record))

    def get(self, id_or_uuid: str) -> FailedRecord | None:
        def read(cur: Any) -> FailedRecord | None:
            number = failed_id(id_or_uuid)
            key = -1 if number is None else number  # no row has id -1
            cur.execute(
                self._driver.sql(
                    f"SELECT {_COLUMNS} FROM conveyor_failed_jobs WHERE id = ? OR uuid = ?"
                ),
                (key, id_or_uuid),
            )
            row = cur.fetchone()
            return _row(row) if row else None

        return self._driver.run(read, write=False)

    def page(
        self, queue: str | None = None, before: int | None = None, limit: int = 100
    ) -> list[FailedRecord]:
        def read(cur: Any) -> list[FailedRecord]:
            where: list[str] = ["1 = 1"]
            params: list[Any] = []
            if queue is not None:
                where.append("queue = ?")
                params.append(queue)
            if before is not None:
                where.append("id < ?")
                params.append(before)
            cur.execute(
                self._driver.sql(
                    f"SELECT {_COLUMNS} FROM conveyor_failed_jobs WHERE {' AND '.join(where)}"
                    f" ORDER BY id DESC LIMIT {int(limit)}"
                ),
                params,
            )
            return [_row(r) for r in cur.fetchall()]

        return self._driver.run(read, write=False)

    def count(self, queue: str | None = None) -> int:
        def read(cur: Any) -> int:
            if queue is None:
                cur.execute("SELECT COUNT(*) FROM conveyor_failed_jobs")
            else:
                cur.execute(
                    self._driver.sql("SELECT COUNT(*) FROM conveyor_failed_jobs WHERE queue = ?"),
                    (queue,),
                )
            row = cur.fetchone()
            return int(row[0]) if row else 0

        return self._driver.run(read, write=False)

    def forget(self, id_or_uuid: str) -> bool:
        def delete(cur: Any) -> bool:
            number = failed_id(id_or_uuid)
            key = -1 if number is None else number  # no row has id -1
            cur.execute(
                self._driver.sql("DELETE FROM conveyor_failed_jobs WHERE id = ? OR uuid = ?"),
                (key, id_or_uuid),
            )
            return bool(cur.rowcount > 0)

        return self._driver.run(delete)

    def flush(self, older_than: float | None = None) -> int:
        def delete(cur: Any) -> int:
            if older_than is None:
                cur.execute("DELETE FROM conveyor_failed_jobs")
            else:
                cur.execute(
                    self._driver.sql("DELETE FROM conveyor_failed_jobs WHERE failed_at < ?"),
                    (older_than,),
                )
            return int(cur.rowcount)

        return self._driver.run(delete)
