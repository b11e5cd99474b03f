"""After a fork, the child opens its own drivers and sockets instead of sharing its parent's."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlparse

from conveyor import Conveyor
from conveyor.config import load_settings
from conveyor.drivers.redis.driver import RedisDriver
from tests.servers import REDIS_URL, require_server


def in_child(check: Callable[[], bool]) -> bool:
    """Run ``check`` in a forked child and return its answer."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            answer = b"1" if check() else b"0"
        except BaseException:
            answer = b"E"
        os.write(write, answer)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    assert answer != b"E", "the check raised in the child"
    return answer == b"1"


def test_a_forked_child_opens_its_own_driver(app: Conveyor) -> None:
    parents = app.driver()
    assert app.driver() is parents  # one per process...
    assert in_child(lambda: app.driver() is not parents)  # ...and a new one in a child


def test_a_forked_child_never_writes_on_its_parents_redis_socket() -> None:
    url = urlparse(REDIS_URL)
    require_server(REDIS_URL, url.hostname or "127.0.0.1", url.port or 6379)
    app = Conveyor(load_settings(env={"CONVEYOR_CONNECTION": REDIS_URL}))
    try:
        driver = app.driver()
        assert isinstance(driver, RedisDriver)
        conn = driver.conn
        assert conn._direct(("PING",)) == [b"PONG"]
        parents = list(conn._idle)

        def uses_its_own() -> bool:
            replies = conn._direct(("PING",))
            return replies == [b"PONG"] and not any(c in parents for c in conn._idle)

        assert in_child(uses_its_own)
        assert conn._idle == parents  # the parent's connection is still there, unused
    finally:
        app.close()
