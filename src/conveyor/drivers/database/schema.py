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
    (
        2,
        [
            # one row per batch: the counters every job outcome updates in one statement, and
            # a token per callback event that the statement firing it writes (fired once)
            """CREATE TABLE IF NOT EXISTS conveyor_batches (
                id {text_key} PRIMARY KEY,
                name {text_key} NOT NULL,
                total_jobs INTEGER NOT NULL,
                pending_jobs INTEGER NOT NULL,
                failed_jobs INTEGER NOT NULL,
                allow_failures INTEGER NOT NULL,
                options {blob} NOT NULL,
                created_at {real} NOT NULL,
                cancelled_at {real} NULL,
                finished_at {real} NULL,
                then_token {text_key} NULL,
                catch_token {text_key} NULL,
                finally_token {text_key} NULL
            )""",
            "CREATE INDEX {if_not_exists} conveyor_batches_created "
            "ON conveyor_batches (created_at)",
            """CREATE TABLE IF NOT EXISTS conveyor_batch_failures (
                seq {id},
                batch_id {text_key} NOT NULL,
                job_id {text_key} NOT NULL,
                failed_at {real} NOT NULL
            )""",
            "CREATE INDEX {if_not_exists} conveyor_batch_failures_job "
            "ON conveyor_batch_failures (batch_id, job_id)",
        ],
    ),
    # PostgreSQL creates its one-round-trip claim function here (postgres_take.py); the other
    # servers have nothing to do, but record the version so that the numbers stay shared
    (3, []),
    # MariaDB/MySQL create their one-round-trip claim procedure here (mysql_take.py)
    (4, []),
    # PostgreSQL and MariaDB/MySQL add ``conveyor_step``: the same, plus starting a prefetched
    # job and prefetching the next (the old routine stays for workers not yet upgraded)
    (5, []),
    # PostgreSQL adds ``conveyor_step_many``: the same for several jobs each way, so that one
    # statement serves a worker that claims several jobs ahead
    (6, []),
]


def render(statement: str, types: dict[str, str]) -> str:
    return statement.format(**types)
