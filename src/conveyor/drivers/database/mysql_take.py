"""The MariaDB/MySQL worker's hot path: acknowledge a job and claim the next in one round trip.

``conveyor_take`` (a stored procedure created by migration 4) opens a transaction, deletes the
finished job if its token still matches, walks the worker's queues in priority order and claims
the oldest available job of the first queue that has one with ``FOR UPDATE SKIP LOCKED``, then
commits and answers with one row. The driver sends one ``CALL`` instead of BEGIN, DELETE, the
clock, the locking read, the UPDATE and COMMIT: six round trips become one.

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
from .dialect import Claim

#: the migration version whose statements create the procedure below
VERSION = 4
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


def procedures(flavor: str) -> list[str]:
    """Migration 4, re-runnable if cut short: MariaDB skips a procedure that exists (which needs
    only CREATE ROUTINE); MySQL, which cannot before 8.0.29, drops it first (ALTER ROUTINE)."""
    if flavor == "mariadb":
        return [_PROCEDURE.format(if_not_exists="IF NOT EXISTS")]
    return ["DROP PROCEDURE IF EXISTS conveyor_take", _PROCEDURE.format(if_not_exists="")]


_CALL = "CALL conveyor_take(%s, %s, %s, %s, %s)"
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
    ) -> tuple[bool, Claim | None]:
        """Acknowledge ``done`` (job id, token) if given, and claim the next job under ``token``.

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
                    return done is not None, (mine[0], tuple(mine[1:]))
            self._local.token = token
            done_id, done_token = done or (None, None)
            try:
                cur.execute(_CALL, (json.dumps(list(queues)), lease, token, done_id, done_token))
            except pymysql.err.MySQLError as exc:
                if exc.args and exc.args[0] == _MISSING_ROUTINE:
                    raise ConfigError(
                        "the MySQL/MariaDB database lacks Conveyor's migration 4 (the"
                        " conveyor_take procedure): run `conveyor migrate`, or drop"
                        " auto_migrate=false from the URL"
                    ) from None
                raise
            row = cur.fetchone()
            while cur.nextset():  # the CALL's own status comes last
                pass
        assert row is not None
        acked, queue = bool(row[0]), row[1]
        return acked, (None if queue is None else (queue, (row[2], row[3], int(row[4]))))
