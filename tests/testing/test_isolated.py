"""IsolatedQueue / conveyor_queue: a real queue of the test's own, current while it is on, run
by a real worker, and removed from the server afterwards."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from conveyor import ConfigError, Conveyor, current_app
from conveyor.testing import IsolatedQueue
from tests.contract.backends.postgres import require_postgres
from tests.contract.backends.redis import require_redis
from tests.servers import POSTGRES_URL, REDIS_URL
from tests.testing.jobs import Charge, SendWelcomeEmail


def test_the_fixture_is_a_real_sqlite_queue_in_the_tests_folder(
    conveyor_queue: IsolatedQueue, tmp_path: Path, ran: list[str]
) -> None:
    assert current_app() is conveyor_queue.app
    SendWelcomeEmail(user_id=1).dispatch()
    SendWelcomeEmail(user_id=2).delay(3600).dispatch()
    assert conveyor_queue.size().pending == 1 and conveyor_queue.size().delayed == 1
    assert (tmp_path / "database.db").exists()
    assert conveyor_queue.work() == 1
    assert ran == ["welcome 1"]


def test_a_retry_waits_for_its_backoff_as_on_a_real_queue(conveyor_queue: IsolatedQueue) -> None:
    Charge(order_id=1).dispatch()
    assert conveyor_queue.work() == 1  # the first attempt; the retry waits 10 s
    assert conveyor_queue.size().delayed == 1
    assert conveyor_queue.failed() == []


def test_the_previous_app_comes_back(app: Conveyor, tmp_path: Path) -> None:
    with IsolatedQueue(tmp_path / "q", base=app.settings) as queue:
        assert current_app() is queue.app
    assert current_app() is app


def test_on_redis_under_a_prefix_removed_after(app: Conveyor, tmp_path: Path) -> None:
    require_redis()
    with IsolatedQueue(tmp_path, REDIS_URL, base=app.settings) as queue:
        SendWelcomeEmail(user_id=1).dispatch()
        assert queue.size().pending == 1
        prefix = queue.settings.connection().prefix
        assert prefix.startswith("conveyor-test-")
        client = redis.Redis.from_url(REDIS_URL)
        assert list(client.scan_iter(match=f"{{{prefix}*"))
    assert not list(client.scan_iter(match=f"{{{prefix}*"))
    client.close()


def test_on_postgres_in_a_schema_dropped_after(app: Conveyor, tmp_path: Path) -> None:
    require_postgres()
    with IsolatedQueue(tmp_path, POSTGRES_URL, base=app.settings) as queue:
        SendWelcomeEmail(user_id=1).dispatch()
        assert queue.size().pending == 1
        schema = queue.settings.connection().url.rpartition("schema=")[2]
    with psycopg.connect(POSTGRES_URL) as conn:
        found = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (schema,)
        ).fetchone()
    assert schema.startswith("conveyor_test_") and found is None


def test_other_servers_are_refused(app: Conveyor, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'mysql' is none of these"):
        IsolatedQueue(tmp_path, "mysql://root@127.0.0.1/test", base=app.settings)
