"""Schema migrations, in order. Released migrations are never edited: add a new one instead.

``{blob}``, ``{real}``, ``{id}`` and ``{text_key}`` are filled per dialect so that one list
serves SQLite, PostgreSQL and MariaDB/MySQL.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS conveyor_jobs (
                seq {id},
                id {text_key} NOT NULL UNIQUE,
                queue {text_key} NOT NULL,
                payload {blob} NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                available_at {real} NOT NULL,
                reserved_at {real} NULL,
                token {text_key} NULL,
                created_at {real} NOT NULL
            )""",
            "CREATE INDEX {if_not_exists} conveyor_jobs_claim "
            "ON conveyor_jobs (queue, available_at, seq)",
            """CREATE TABLE IF NOT EXISTS conveyor_failed_jobs (
                id {id},
                uuid {text_key} NOT NULL UNIQUE,
                connection {text_key} NOT NULL,
                queue {text_key} NOT NULL,
                payload {blob} NOT NULL,
                exception {blob} NOT NULL,
                failed_at {real} NOT NULL
            )""",
            "CREATE INDEX {if_not_exists} conveyor_failed_jobs_queue "
            "ON conveyor_failed_jobs (queue, id)",
            """CREATE TABLE IF NOT EXISTS conveyor_meta (
                name {text_key} PRIMARY KEY,
                value {text_key} NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS conveyor_workers (
                id {text_key} PRIMARY KEY,
                hostname {text_key} NOT NULL,
                pid INTEGER NOT NULL,
                queues {text_key} NOT NULL,
                started_at {real} NOT NULL,
                last_seen {real} NOT NULL,
                processed INTEGER NOT NULL DEFAULT 0,
                current_job {text_key} NULL
            )""",
        ],
    ),
]


def render(statement: str, types: dict[str, str]) -> str:
    return statement.format(**types)
