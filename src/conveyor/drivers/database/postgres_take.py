"""The PostgreSQL worker's hot path: acknowledge a job and claim the next in one round trip.

``conveyor_step`` (created by migration 5; migration 3's ``conveyor_take`` is the same without
prefetch, kept for workers not yet upgraded) deletes the finished job if its token still
matches, counts the attempt of a prefetched job that starts now, then walks the worker's queues
in priority order and claims the oldest available job of the first queue that has one, with
``FOR UPDATE SKIP LOCKED`` so concurrent workers step over each other's rows; a prefetch claim
leaves the attempt count alone. The driver calls it as one statement on its autocommit
connection: one round trip and one transaction per job, instead of BEGIN, DELETE, claim and
COMMIT.

The call skips psycopg's cursor layer: it is a server-side prepared statement sent through
libpq directly (``_Step``), which takes the client's CPU per call from about 110 to 40 µs, a
quarter of a worker's control process's time per job on this path.

The function commits with ``synchronous_commit = off``: the server answers before the WAL
reaches the disk. A claim, acknowledgement, release, extension or fail-move lost in a server
crash only makes a job run again, which the at-least-once promise allows; and since the WAL is
written in order, any later durable commit (every push) flushes the earlier ones with it. A
dispatch keeps waiting for the flush, so a job id returned to a caller is always on disk.
"""

from __future__ import annotations

import select
import threading
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq

from ...errors import ConfigError
from .dialect import Begin, Claim
from .postgres_connection import PGConnection

#: the migration versions whose statements include the functions below
VERSION = 3
STEP_VERSION = 5
FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION conveyor_take(
        p_queues text[], p_lease float8, p_token text,
        p_done_id text DEFAULT NULL, p_done_token text DEFAULT NULL
    ) RETURNS TABLE (
        acked boolean, job_queue text, job_id text, job_payload text, job_attempts integer
    ) LANGUAGE plpgsql AS $$
    DECLARE
        t float8;
        q text;
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        acked := false;
        IF p_done_id IS NOT NULL THEN
            DELETE FROM conveyor_jobs WHERE id = p_done_id AND token = p_done_token;
            acked := FOUND;
        END IF;
        t := extract(epoch FROM clock_timestamp());
        FOREACH q IN ARRAY p_queues LOOP
            WITH next AS (
                SELECT n.seq FROM conveyor_jobs AS n
                WHERE n.queue = q AND n.available_at <= t
                ORDER BY n.available_at, n.seq
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE conveyor_jobs AS j
            SET attempts = j.attempts + 1, available_at = t + p_lease, reserved_at = t,
                token = p_token
            FROM next WHERE j.seq = next.seq
            RETURNING j.queue, j.id, j.payload, j.attempts
            INTO job_queue, job_id, job_payload, job_attempts;
            EXIT WHEN FOUND;
        END LOOP;
        RETURN NEXT;
    END
    $$""",
]
STEP_FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION conveyor_step(
        p_queues text[], p_lease float8, p_token text, p_count integer,
        p_done_id text, p_done_token text,
        p_begin_id text, p_begin_token text, p_begin_attempts integer
    ) RETURNS TABLE (
        acked boolean, begun boolean, job_queue text, job_id text, job_payload text,
        job_attempts integer
    ) LANGUAGE plpgsql AS $$
    DECLARE
        t float8;
        q text;
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        acked := false;
        begun := false;
        IF p_done_id IS NOT NULL THEN
            DELETE FROM conveyor_jobs WHERE id = p_done_id AND token = p_done_token;
            acked := FOUND;
        END IF;
        IF p_begin_id IS NOT NULL THEN
            UPDATE conveyor_jobs SET attempts = p_begin_attempts
            WHERE id = p_begin_id AND token = p_begin_token;
            begun := FOUND;
        END IF;
        t := extract(epoch FROM clock_timestamp());
        FOREACH q IN ARRAY p_queues LOOP
            WITH next AS (
                SELECT n.seq FROM conveyor_jobs AS n
                WHERE n.queue = q AND n.available_at <= t
                ORDER BY n.available_at, n.seq
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE conveyor_jobs AS j
            SET attempts = j.attempts + p_count, available_at = t + p_lease, reserved_at = t,
                token = p_token
            FROM next WHERE j.seq = next.seq
            RETURNING j.queue, j.id, j.payload, j.attempts + 1 - p_count
            INTO job_queue, job_id, job_payload, job_attempts;
            EXIT WHEN FOUND;
        END LOOP;
        RETURN NEXT;
    END
    $$""",
]
#: the claim a lost answer may hide: this token's reservation (reserved rows are not available)
_MINE = (
    "SELECT queue, id, payload, attempts FROM conveyor_jobs WHERE queue = ANY(%s::text[])"
    " AND available_at > extract(epoch FROM clock_timestamp()) AND token = %s"
)
_STEP_NAME = b"conveyor_step_5"
_STEP_SQL = (
    "SELECT acked, begun, job_queue, job_id, job_payload, job_attempts"
    " FROM conveyor_step($1::text[], $2::float8, $3, $4, $5, $6, $7, $8, $9)"
)


def _text_array(items: Sequence[str]) -> str:
    """A PostgreSQL array literal with every element quoted, so no name is misread."""
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{q}"' for q in quoted) + "}"


class _Step:
    """``conveyor_step`` through libpq: prepared once per connection, then one message out and
    one result back per call, with the values exchanged as text.

    Errors surface as psycopg's exceptions (``OperationalError`` for a broken connection, the
    SQLSTATE's class for a refused statement), so the driver's retry rule applies unchanged. A
    prepared statement the server forgot (a connection pooler, ``DISCARD ALL``) is prepared
    again once.
    """

    def __init__(self) -> None:
        #: the libpq connections this statement is prepared on (by identity; a replaced
        #: connection is a new object)
        self._prepared: set[int] = set()

    def call(
        self, raw: psycopg.Connection[Any], encoding: str, params: list[str | None]
    ) -> list[bytes | None]:
        pg = raw.pgconn
        values = [None if p is None else p.encode(encoding) for p in params]
        for attempt in (1, 2):
            if id(pg) not in self._prepared:
                self._check(pg.prepare(_STEP_NAME, _STEP_SQL.encode(encoding)), encoding)
                self._prepared.add(id(pg))
            result = self._run(pg, values)
            if result.status == pq.ExecStatus.TUPLES_OK:
                return [result.get_value(0, column) for column in range(6)]
            state = result.error_field(pq.DiagnosticField.SQLSTATE)
            if state == b"26000" and attempt == 1:  # invalid_sql_statement_name: forgotten
                self._prepared.discard(id(pg))
                continue
            self._check(result, encoding)
        raise AssertionError("unreachable")

    @staticmethod
    def _run(pg: pq.abc.PGconn, values: list[bytes | None]) -> pq.abc.PGresult:
        pg.send_query_prepared(_STEP_NAME, values)
        poller = select.poll()  # not select(): a descriptor number past 1023 is fine here
        poller.register(pg.socket, select.POLLIN)
        while True:
            pg.consume_input()
            if not pg.is_busy():
                break
            poller.poll()
        result = pg.get_result()
        while pg.get_result() is not None:  # leave the connection idle for psycopg
            pass
        assert result is not None
        return result

    @staticmethod
    def _check(result: pq.abc.PGresult, encoding: str) -> None:
        if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            raise psycopg.errors.error_from_result(result, encoding=encoding)


def _flag(value: bytes | None) -> bool:
    return value == b"t"


class Taker:
    """Calls ``conveyor_take`` and hands over a claim whose answer a broken connection hid."""

    def __init__(self) -> None:
        #: per thread, like the driver's connections: the token of the thread's last call
        self._local = threading.local()
        self._step = _Step()

    def take(
        self,
        conn: PGConnection,
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
        conn.discard_notifications()
        if token == getattr(self._local, "token", ""):
            mine = conn.raw.execute(_MINE, (list(queues), token)).fetchone()
            if mine is not None:
                job_id, payload, attempts = mine[1:]
                data = payload.encode() if isinstance(payload, str) else bytes(payload)
                claim = (mine[0], (job_id, data, int(attempts) + 1 - int(count)))
                return done is not None, begin is not None, claim
        self._local.token = token
        done_id, done_token = done or (None, None)
        begin_id, begin_token, begin_attempts = begin or (None, None, None)
        encoding = conn.raw.info.encoding
        try:
            row = self._step.call(conn.raw, encoding, [
                _text_array(queues), repr(float(lease)), token, str(int(count)), done_id,
                done_token, begin_id, begin_token,
                None if begin_attempts is None else str(begin_attempts),
            ])  # fmt: skip
        except psycopg.errors.UndefinedFunction:
            raise ConfigError(
                "the PostgreSQL schema lacks Conveyor's migration 5 (the conveyor_step function):"
                " run `conveyor migrate`, or drop auto_migrate=false from the URL"
            ) from None
        acked, begun, queue, job_id, payload, attempts = row
        if queue is None or job_id is None or payload is None or attempts is None:
            return _flag(acked), _flag(begun), None
        claim = (queue.decode(encoding), (job_id.decode(encoding), payload, int(attempts)))
        return _flag(acked), _flag(begun), claim
