"""The PostgreSQL worker's hot path: acknowledge jobs and claim the next in one round trip.

``conveyor_step`` (created by migration 5; migration 3's ``conveyor_take`` is the same without
prefetch, kept for workers not yet upgraded) deletes the finished job if its token still
matches, counts the attempt of a prefetched job that starts now, then walks the worker's queues
in priority order and claims the oldest available job of the first queue that has one, with
``FOR UPDATE SKIP LOCKED`` so concurrent workers step over each other's rows; a prefetch claim
leaves the attempt count alone. The driver calls it as one statement on its autocommit
connection: one round trip and one transaction per job, instead of BEGIN, DELETE, claim and
COMMIT.

``conveyor_step_many`` (migration 6) does the same for several jobs each way: it deletes the
jobs finished since the worker's last call and claims up to ``n``, the i-th under the token
``<token>:i``. A worker prefetching sixteen jobs calls it once per several jobs, since the
executor runs the queued ones while a call travels. Its statements are planned once
(``force_generic_plan``): custom plans, which PL/pgSQL makes anew on every call while the
generic plan looks costlier to the planner, took about 0.2 ms of the server's time per call.

Calls skip psycopg's cursor layer: each is a server-side prepared statement sent through libpq
directly (``_Prepared``), which takes the client's CPU per call from about 110 to 40 µs, a
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
MANY_VERSION = 6
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
MANY_FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION conveyor_step_many(
        p_queues text[], p_lease float8, p_token text, p_count integer, p_n integer,
        p_done_ids text[], p_done_tokens text[],
        p_begin_id text, p_begin_token text, p_begin_attempts integer
    ) RETURNS TABLE (
        acked boolean[], begun boolean, job_k integer, job_queue text, job_id text,
        job_payload text, job_attempts integer
    ) LANGUAGE plpgsql AS $$
    DECLARE
        t float8;
        q text;
        got integer := 0;
        taken integer;
    BEGIN
        PERFORM set_config('synchronous_commit', 'off', true);
        IF current_setting('server_version_num')::integer >= 120000 THEN
            PERFORM set_config('plan_cache_mode', 'force_generic_plan', true);
        END IF;
        WITH gone AS (
            DELETE FROM conveyor_jobs AS d
            USING unnest(p_done_ids, p_done_tokens) AS x(id, token)
            WHERE d.id = x.id AND d.token = x.token
            RETURNING d.id
        )
        SELECT coalesce(array_agg(gone.id IS NOT NULL ORDER BY x.n), '{}') INTO acked
        FROM unnest(p_done_ids) WITH ORDINALITY AS x(id, n)
        LEFT JOIN gone ON gone.id = x.id;
        begun := false;
        IF p_begin_id IS NOT NULL THEN
            UPDATE conveyor_jobs SET attempts = p_begin_attempts
            WHERE id = p_begin_id AND token = p_begin_token;
            begun := FOUND;
        END IF;
        t := extract(epoch FROM clock_timestamp());
        FOREACH q IN ARRAY p_queues LOOP
            EXIT WHEN got >= p_n;
            RETURN QUERY
            WITH locked AS (
                SELECT n.seq, n.available_at FROM conveyor_jobs AS n
                WHERE n.queue = q AND n.available_at <= t
                ORDER BY n.available_at, n.seq
                LIMIT p_n - got
                FOR UPDATE SKIP LOCKED
            ), next AS (
                SELECT l.seq, (got + row_number() OVER (ORDER BY l.available_at, l.seq))::integer
                    AS k
                FROM locked AS l
            ), claimed AS (
                UPDATE conveyor_jobs AS j
                SET attempts = j.attempts + CASE WHEN next.k = 1 THEN p_count ELSE 0 END,
                    available_at = t + p_lease, reserved_at = t,
                    token = p_token || ':' || (next.k - 1)
                FROM next WHERE j.seq = next.seq
                RETURNING next.k, j.queue, j.id, j.payload,
                    j.attempts + 1 - CASE WHEN next.k = 1 THEN p_count ELSE 0 END AS attempts
            )
            SELECT acked, begun, c.k, c.queue, c.id, c.payload, c.attempts FROM claimed AS c;
            GET DIAGNOSTICS taken = ROW_COUNT;
            got := got + taken;
        END LOOP;
        IF got = 0 THEN
            RETURN NEXT;
        END IF;
    END
    $$""",
]
#: the claim a lost answer may hide: this token's reservation (reserved rows are not available)
_MINE = (
    "SELECT queue, id, payload, attempts FROM conveyor_jobs WHERE queue = ANY(%s::text[])"
    " AND available_at > extract(epoch FROM clock_timestamp()) AND token = %s"
)
#: the claims a lost answer to a ``conveyor_step_many`` call may hide: its tokens' reservations
_MINE_MANY = (
    "SELECT queue, id, payload, attempts, token FROM conveyor_jobs"
    " WHERE queue = ANY(%s::text[]) AND available_at > extract(epoch FROM clock_timestamp())"
    " AND token LIKE %s"
)


def _text_array(items: Sequence[str]) -> str:
    """A PostgreSQL array literal with every element quoted, so no name is misread."""
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{q}"' for q in quoted) + "}"


class _Prepared:
    """One function call through libpq: prepared once per connection, then one message out and
    one result back per call, with the values exchanged as text.

    Errors surface as psycopg's exceptions (``OperationalError`` for a broken connection, the
    SQLSTATE's class for a refused statement), so the driver's retry rule applies unchanged. A
    prepared statement the server forgot (a connection pooler, ``DISCARD ALL``) is prepared
    again once.
    """

    def __init__(self, name: bytes, sql: str) -> None:
        self._name = name
        self._sql = sql
        #: the libpq connections this statement is prepared on (by identity; a replaced
        #: connection is a new object)
        self._prepared: set[int] = set()

    def call(
        self, raw: psycopg.Connection[Any], encoding: str, params: list[str | None]
    ) -> list[list[bytes | None]]:
        pg = raw.pgconn
        values = [None if p is None else p.encode(encoding) for p in params]
        for attempt in (1, 2):
            if id(pg) not in self._prepared:
                self._check(pg.prepare(self._name, self._sql.encode(encoding)), encoding)
                self._prepared.add(id(pg))
            result = self._run(pg, values)
            if result.status == pq.ExecStatus.TUPLES_OK:
                width = result.nfields
                return [
                    [result.get_value(row, column) for column in range(width)]
                    for row in range(result.ntuples)
                ]
            state = result.error_field(pq.DiagnosticField.SQLSTATE)
            if state == b"26000" and attempt == 1:  # invalid_sql_statement_name: forgotten
                self._prepared.discard(id(pg))
                continue
            self._check(result, encoding)
        raise AssertionError("unreachable")

    def _run(self, pg: pq.abc.PGconn, values: list[bytes | None]) -> pq.abc.PGresult:
        pg.send_query_prepared(self._name, values)
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
        self._step = _Prepared(
            b"conveyor_step_5",
            "SELECT acked, begun, job_queue, job_id, job_payload, job_attempts"
            " FROM conveyor_step($1::text[], $2::float8, $3, $4, $5, $6, $7, $8, $9)",
        )
        self._step_many = _Prepared(
            b"conveyor_step_many_6",
            "SELECT acked, begun, job_k, job_queue, job_id, job_payload, job_attempts"
            " FROM conveyor_step_many($1::text[], $2::float8, $3, $4, $5, $6::text[],"
            " $7::text[], $8, $9, $10)",
        )

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
                claim = (mine[0], (job_id, _bytes(payload), int(attempts) + 1 - int(count)))
                return done is not None, begin is not None, claim
        self._local.token = token
        done_id, done_token = done or (None, None)
        begin_id, begin_token, begin_attempts = begin or (None, None, None)
        encoding = conn.raw.info.encoding
        try:
            [row] = self._step.call(conn.raw, encoding, [
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

    def take_many(
        self,
        conn: PGConnection,
        queues: Sequence[str],
        lease: float,
        token: str,
        done: Sequence[tuple[str, str]],
        begin: Begin | None,
        n: int,
        count: bool,
    ) -> tuple[list[bool], bool, list[tuple[Claim, str]]]:
        """``take`` for several jobs each way: acknowledge every job of ``done``, start
        ``begin``, and claim up to ``n`` jobs, the i-th under the token ``token:i`` (with
        ``count`` the first starts now), in one statement: ``conveyor_step_many``.

        A retry of a call whose connection broke finds what the first call claimed by its
        tokens, as ``take`` does.
        """
        conn.discard_notifications()
        if token == getattr(self._local, "token", ""):
            mine = conn.raw.execute(_MINE_MANY, (list(queues), f"{token}:%")).fetchall()
            if mine:
                claims = []
                for queue, job_id, payload, attempts, job_token in mine:
                    k = int(job_token.rsplit(":", 1)[1])
                    uncounted = k > 0 or not count  # its start is still to be counted
                    row = (job_id, _bytes(payload), int(attempts) + int(uncounted))
                    claims.append((k, ((queue, row), job_token)))
                claims.sort(key=lambda pair: pair[0])
                return [True] * len(done), begin is not None, [c for _, c in claims]
        self._local.token = token
        begin_id, begin_token, begin_attempts = begin or (None, None, None)
        encoding = conn.raw.info.encoding
        try:
            rows = self._step_many.call(conn.raw, encoding, [
                _text_array(queues), repr(float(lease)), token, str(int(count)), str(n),
                _text_array([job_id for job_id, _ in done]),
                _text_array([job_token for _, job_token in done]),
                begin_id, begin_token, None if begin_attempts is None else str(begin_attempts),
            ])  # fmt: skip
        except psycopg.errors.UndefinedFunction:
            raise ConfigError(
                "the PostgreSQL schema lacks Conveyor's migration 6 (the conveyor_step_many"
                " function): run `conveyor migrate`, or drop auto_migrate=false from the URL"
            ) from None
        acked = (rows[0][0] or b"{}")[1:-1].split(b",")
        begun = _flag(rows[0][1])
        found: list[tuple[int, tuple[Claim, str]]] = []
        for _, _, nth, queue, job_id, payload, attempts in rows:
            if nth is None or queue is None or job_id is None or attempts is None:
                continue  # the one row of a call that claimed nothing
            i = int(nth) - 1
            claim = (queue.decode(encoding), (job_id.decode(encoding), payload, int(attempts)))
            found.append((i, (claim, f"{token}:{i}")))
        found.sort(key=lambda pair: pair[0])
        return [flag == b"t" for flag in acked if flag], begun, [c for _, c in found]


def _bytes(payload: str | bytes) -> bytes:
    """A payload read back through psycopg's cursor (text), as the one-statement path gives it."""
    return payload.encode() if isinstance(payload, str) else bytes(payload)
