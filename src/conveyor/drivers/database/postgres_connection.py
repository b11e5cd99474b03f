"""PostgreSQL connections: the driver's own (autocommit, writes open transactions) and the
idle worker's listening one.
"""

from __future__ import annotations

import re
import time
from contextlib import suppress
from typing import Any, Protocol

import psycopg
from psycopg import sql as pgsql

from ...errors import ConfigError

NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"
#: no parameters, so psycopg sends each in one simple-protocol message
_BEGIN_NOW = f"BEGIN; {NOW}"
_BEGIN_RELAXED_NOW = f"BEGIN; SET LOCAL synchronous_commit = off; {NOW}"
#: ``INSERT ... VALUES (%s, ...)`` and what follows the row (ON CONFLICT ...)
_VALUES = re.compile(r"^(INSERT INTO .+? VALUES )(\((?:%s, )*%s\))(.*)$", re.DOTALL)
_CHUNK = 1000
#: a connect that fails for one of these reasons fails the same way next time
_PERMANENT_CONNECT = (
    "does not exist",
    "authentication failed",
    "no pg_hba.conf",
    "permission denied",
)


class ListenSettings(Protocol):
    """What a connection needs to open its listener: the dialect provides it."""

    conninfo: str
    channel: str
    poll_interval: float


class _Cursor(psycopg.Cursor[Any]):
    """psycopg's cursor, with ``executemany`` of an INSERT sent as multi-row INSERTs.

    psycopg runs ``executemany`` as one statement per row in pipeline mode, which costs a single
    dispatch (the common case) more than half a millisecond and caps a bulk dispatch at some
    20,000 rows/s; one ``INSERT ... VALUES (...), (...)`` per chunk does both in one statement.
    """

    def executemany(self, query: Any, params_seq: Any, *, returning: bool = False) -> None:
        rows = params_seq if isinstance(params_seq, list) else list(params_seq)
        match = _VALUES.match(query) if isinstance(query, str) and not returning else None
        if match is None or not rows:
            super().executemany(query, rows, returning=returning)
            return
        head, group, tail = match.groups()
        for at in range(0, len(rows), _CHUNK):
            chunk = rows[at : at + _CHUNK]
            values = ", ".join([group] * len(chunk))
            self.execute(f"{head}{values}{tail}", [value for row in chunk for value in row])


def connect(conninfo: str, autocommit: bool = True) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(conninfo, autocommit=autocommit, cursor_factory=_Cursor)
    except psycopg.OperationalError as exc:
        text = str(exc)
        if any(reason in text for reason in _PERMANENT_CONNECT) and "FATAL" in text:
            raise ConfigError(f"cannot use PostgreSQL: {text.strip()}") from None
        raise


class PGConnection:
    """The driver's autocommit connection plus, once the worker idles, its listening one.

    Autocommit makes a read one round trip (no BEGIN/COMMIT around it); writes open their
    transaction explicitly. Closing this closes the listener too, so a connection the driver
    drops after an error takes its listener with it and both come back together.
    """

    def __init__(self, raw: psycopg.Connection[Any], dialect: ListenSettings) -> None:
        self.raw = raw
        self._dialect = dialect
        self._listener: psycopg.Connection[Any] | None = None
        self._began_at: float | None = None

    def begin(self, durable: bool = True) -> None:
        """BEGIN and read the clock in one round trip; the transaction's first ``now()`` uses it.

        A claim or a push asks for the time right after opening its transaction, so this saves
        a round trip on each; the reading is the server's, taken microseconds earlier. A
        transaction that need not survive a server crash (``durable=False``) commits without
        waiting for the WAL flush: see ``postgres_take`` for which ones those are.
        """
        cur = self.raw.execute(_BEGIN_NOW if durable else _BEGIN_RELAXED_NOW)
        while cur.nextset():  # to the clock reading, the last result
            pass
        row = cur.fetchone()
        self._began_at = float(row[0]) if row else None

    def now(self) -> float:
        began, self._began_at = self._began_at, None
        if began is not None:
            return began
        row = self.raw.execute(NOW).fetchone()
        assert row is not None
        return float(row[0])

    def cursor(self) -> Any:
        return self.raw.cursor()

    def commit(self) -> None:
        self._began_at = None
        self.raw.commit()

    def rollback(self) -> None:
        self._began_at = None
        if self.raw.broken or self.raw.closed:
            raise psycopg.OperationalError("the connection was lost")  # the driver drops it
        self.raw.rollback()

    def close(self) -> None:
        self._close_listener()
        self.raw.close()

    def wait_for_notification(self, timeout: float) -> None:
        """Sleep until a push is announced or ``timeout`` passes; never raises."""
        if timeout <= 0:
            return
        if self._listener is None:
            try:
                self._listener = self._listen()
            except (psycopg.Error, ConfigError):
                time.sleep(min(timeout, self._dialect.poll_interval))
            return  # announcements made before LISTEN are lost: let the caller look again
        try:
            for _ in self._listener.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            self._close_listener()
            time.sleep(min(timeout, self._dialect.poll_interval))

    def discard_notifications(self) -> None:
        """Drop announcements that arrived before a claim: the claim itself sees those jobs."""
        if self._listener is None:
            return
        try:
            for _ in self._listener.notifies(timeout=0):
                pass
        except psycopg.Error:
            self._close_listener()

    def _listen(self) -> psycopg.Connection[Any]:
        listener = connect(self._dialect.conninfo)
        try:
            listener.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self._dialect.channel)))
        except BaseException:
            listener.close()
            raise
        return listener

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with suppress(psycopg.Error):
                listener.close()
