"""The MariaDB/MySQL worker's hot path: acknowledge a job and claim the next in one round trip.

``conveyor_step`` (a stored procedure created by migration 5; migration 4's ``conveyor_take`` is
the same without prefetch, kept for workers not yet upgraded) opens a transaction, deletes the
finished job if its token still matches, counts the attempt of a prefetched job that starts
now, walks the worker's queues in priority order and claims the oldest available job of the
first queue that has one with ``FOR UPDATE SKIP LOCKED`` (a prefetch leaves the attempt count
alone), then commits and answers with one row. The driver sends one ``CALL`` instead of BEGIN,
DELETE, the clock, the locking read, the UPDATE and COMMIT: six round trips become one.

Unlike PostgreSQL, neither server lets a session commit without flushing the redo log
(``innodb_flush_log_at_trx_commit`` is server-wide), so each call still waits for the disk.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import pymysql

from ...errors import ConfigError
from .dialect import Begin, Claim

#: the migration versions whose statements create the procedures below
VERSION = 4
STEP_VERSION = 5
_KEY = "VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
_PROCEDURE = f"""CREATE PROCEDURE {{if_not_exists}} conveyor_take(
        IN p_queues LONGTEXT CHARACTER SET utf8mb4, IN p_lease DOUBLE, IN p_token {_KEY},
        IN p_done_id {_KEY}, IN p_done_token {_KEY}
    )
    SQL SECURITY INVOKER
    BEGIN
        DECLARE v_acked INT DEFAULT 0;
        DECLARE v_now DOUBLE;
        DECLARE v_i INT DEFAULT 0;
        DECLARE v_n INT DEFAULT JSON_LENGTH(p_queues);
        DECLARE v_queue {_KEY};
        DECLARE v_seq BIGINT DEFAULT NULL;
        DECLARE v_id {_KEY};
        DECLARE v_payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
        DECLARE v_attempts INT;
        DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_seq = NULL;
        DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
        START TRANSACTION;
        IF p_done_id IS NOT NULL THEN
            DELETE FROM conveyor_jobs WHERE id = p_done_id AND token = p_done_token;
            SET v_acked = ROW_COUNT();
        END IF;
        SET v_now = UNIX_TIMESTAMP(NOW(6));
        WHILE v_seq IS NULL AND v_i < v_n DO
            SET v_queue = JSON_UNQUOTE(JSON_EXTRACT(p_queues, CONCAT('$[', v_i, ']')));
            SELECT seq INTO v_seq FROM conveyor_jobs
            WHERE queue = v_queue AND available_at <= v_now
            ORDER BY available_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED;
            SET v_i = v_i + 1;
        END WHILE;
        IF v_seq IS NOT NULL THEN
            UPDATE conveyor_jobs
            SET attempts = attempts + 1, available_at = v_now + p_lease, reserved_at = v_now,
                token = p_token
            WHERE seq = v_seq;
            SELECT id, payload, attempts INTO v_id, v_payload, v_attempts
            FROM conveyor_jobs WHERE seq = v_seq;
        END IF;
        COMMIT;
        SELECT v_acked, IF(v_seq IS NULL, NULL, v_queue), v_id, v_payload, v_attempts;
    END"""


_STEP = f"""CREATE PROCEDURE {{if_not_exists}} conveyor_step(
        IN p_queues LONGTEXT CHARACTER SET utf8mb4, IN p_lease DOUBLE, IN p_token {_KEY},
        IN p_count INT, IN p_done_id {_KEY}, IN p_done_token {_KEY},
        IN p_begin_id {_KEY}, IN p_begin_token {_KEY}, IN p_begin_attempts INT
    )
    SQL SECURITY INVOKER
    BEGIN
        DECLARE v_acked INT DEFAULT 0;
        DECLARE v_begun INT DEFAULT 0;
        DECLARE v_now DOUBLE;
        DECLARE v_i INT DEFAULT 0;
        DECLARE v_n INT DEFAULT JSON_LENGTH(p_queues);
        DECLARE v_queue {_KEY};
        DECLARE v_seq BIGINT DEFAULT NULL;
        DECLARE v_id {_KEY};
        DECLARE v_payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
        DECLARE v_attempts INT;
        DECLARE CONTINUE HANDLER FOR NOT FOUND SET v_seq = NULL;
        DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
        START TRANSACTION;
        IF p_done_id IS NOT NULL THEN
            DELETE FROM conveyor_jobs WHERE id = p_done_id AND token = p_done_token;
            SET v_acked = ROW_COUNT();
        END IF;
        IF p_begin_id IS NOT NULL THEN
            UPDATE conveyor_jobs SET attempts = p_begin_attempts
            WHERE id = p_begin_id AND token = p_begin_token;
            -- ROW_COUNT() counts changed rows: a repeated call changes none, yet holds the job
            SELECT COUNT(*) INTO v_begun FROM conveyor_jobs
            WHERE id = p_begin_id AND token = p_begin_token;
        END IF;
        SET v_now = UNIX_TIMESTAMP(NOW(6));
        WHILE v_seq IS NULL AND v_i < v_n DO
            SET v_queue = JSON_UNQUOTE(JSON_EXTRACT(p_queues, CONCAT('$[', v_i, ']')));
            SELECT seq INTO v_seq FROM conveyor_jobs
            WHERE queue = v_queue AND available_at <= v_now
            ORDER BY available_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED;
            SET v_i = v_i + 1;
        END WHILE;
        IF v_seq IS NOT NULL THEN
            UPDATE conveyor_jobs
            SET attempts = attempts + p_count, available_at = v_now + p_lease,
                reserved_at = v_now, token = p_token
            WHERE seq = v_seq;
            SELECT id, payload, attempts + 1 - p_count INTO v_id, v_payload, v_attempts
            FROM conveyor_jobs WHERE seq = v_seq;
        END IF;
        COMMIT;
        SELECT v_acked, v_begun, IF(v_seq IS NULL, NULL, v_queue), v_id, v_payload, v_attempts;
    END"""


def procedures(flavor: str, version: int = VERSION) -> list[str]:
    """Migration 4 or 5, re-runnable if cut short: MariaDB skips a procedure that exists (which
    needs only CREATE ROUTINE); MySQL, which cannot before 8.0.29, drops it first (ALTER
    ROUTINE)."""
    name, text = ("conveyor_take", _PROCEDURE) if version == VERSION else ("conveyor_step", _STEP)
    if flavor == "mariadb":
        return [text.format(if_not_exists="IF NOT EXISTS")]
    return [f"DROP PROCEDURE IF EXISTS {name}", text.format(if_not_exists="")]


_CALL = "CALL conveyor_step(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
#: the claim a lost answer may hide: this token's reservation (reserved rows are not available)
_MINE = (
    "SELECT queue, id, payload, attempts FROM conveyor_jobs WHERE queue IN ({})"
    " AND available_at > UNIX_TIMESTAMP(NOW(6)) AND token = %s"
)
_MISSING_ROUTINE = 1305


class Taker:
    """Calls ``conveyor_take`` and hands over a claim whose answer a broken connection hid."""

    def __init__(self) -> None:
        #: per thread, like the driver's connections: the token of the thread's last call
        self._local = threading.local()

    def take(
        self,
        raw: Any,
        queues: Sequence[str],
        lease: float,
        token: str,
        done: tuple[str, str] | None = None,
        begin: Begin | None = None,
        count: bool = True,
    ) -> tuple[bool, bool, Claim | None]:
        """Acknowledge ``done`` (job id, token) and start ``begin`` if given, and claim the
        next job under ``token`` (a prefetch unless ``count``).

        The driver retries a call whose connection broke with the same ``token``; if the first
        call had committed, the job it reserved is found by its token and handed over, rather
        than left to wait out its lease and be charged a second attempt.
        """
        with raw.cursor() as cur:
            if token == getattr(self._local, "token", ""):
                marks = ", ".join(["%s"] * len(queues))
                cur.execute(_MINE.format(marks), (*queues, token))
                mine = cur.fetchone()
                if mine is not None:
                    job_id, payload, attempts = mine[1:]
                    claim = (mine[0], (job_id, payload, int(attempts) + 1 - int(count)))
                    return done is not None, begin is not None, claim
            self._local.token = token
            done_id, done_token = done or (None, None)
            begin_id, begin_token, begin_attempts = begin or (None, None, None)
            try:
                cur.execute(_CALL, (
                    json.dumps(list(queues)), lease, token, int(count), done_id, done_token,
                    begin_id, begin_token, begin_attempts,
                ))  # fmt: skip
            except pymysql.err.MySQLError as exc:
                if exc.args and exc.args[0] == _MISSING_ROUTINE:
                    raise ConfigError(
                        "the MySQL/MariaDB database lacks Conveyor's migration 5 (the"
                        " conveyor_step procedure): run `conveyor migrate`, or drop"
                        " auto_migrate=false from the URL"
                    ) from None
                raise
            row = cur.fetchone()
            while cur.nextset():  # the CALL's own status comes last
                pass
        assert row is not None
        acked, begun, queue = bool(row[0]), bool(row[1]), row[2]
        return acked, begun, (None if queue is None else (queue, (row[3], row[4], int(row[5]))))
