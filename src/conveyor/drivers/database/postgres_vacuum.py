"""Keeping ``conveyor_jobs`` lean on PostgreSQL: workers vacuum it when dead rows pile up.

Every job leaves dead row versions behind (its claim, its start, its deletion), and they sit at
the front of the claim index, which every claim walks from the oldest entry. Autovacuum looks
at a database about once a minute by default, and a busy queue leaves 100,000 dead rows in that
time; on this project's benchmark machine a worker's steady drain fell from 2,263 to 945 jobs/s
over 200,000 jobs with autovacuum off, and went back up after one VACUUM of 0.15 s.

So a worker checks the table's statistics with its heartbeat (every 5 s) and, past a threshold
in the spirit of autovacuum's own (``DEAD_MIN`` plus a fifth of the live rows), vacuums it in a
background thread on a connection of its own, so that no job waits for it. ``SKIP_LOCKED``
makes the other workers that saw the same figures skip it instead of queueing behind it. A
database user that does not own the table gets a warning from the server, not an error, and
the ``vacuum=false`` URL option turns the whole thing off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from ...errors import ConfigError

log = logging.getLogger("conveyor.database")

#: dead rows to tolerate before vacuuming, plus ``DEAD_SHARE`` of the live ones
DEAD_MIN = 10_000
DEAD_SHARE = 0.2
_STATS = (
    "SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables"
    " WHERE relid = to_regclass('conveyor_jobs')"
)


class Vacuumer:
    """Decides from a connection's statistics, vacuums from a thread; one at a time."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        self._running: threading.Thread | None = None

    def check(self, raw: psycopg.Connection[Any]) -> None:
        """Start a VACUUM if the table needs one and none runs here."""
        if self._running is not None and self._running.is_alive():
            return
        row = raw.execute(_STATS).fetchone()
        if row is None:
            return
        live, dead = int(row[0]), int(row[1])
        if dead < DEAD_MIN + DEAD_SHARE * live:
            return
        log.debug("conveyor_jobs has %d dead rows beside %d live ones: vacuuming", dead, live)
        self._running = threading.Thread(target=self._vacuum, name="conveyor-vacuum", daemon=True)
        self._running.start()

    def wait(self, timeout: float) -> None:
        """Wait for the running VACUUM, if any: for a caller that checks its effect."""
        running = self._running
        if running is not None:
            running.join(timeout)

    def _vacuum(self) -> None:
        try:
            with self._connect() as conn:
                conn.execute("VACUUM (SKIP_LOCKED) conveyor_jobs")
        except (psycopg.Error, ConfigError) as exc:  # the next check tries again
            log.debug("vacuuming conveyor_jobs failed: %s", exc)
