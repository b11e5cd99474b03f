"""What only the Redis driver promises: URLs, idempotent pushes, blocking waits, script reloads,
dropped connections, the cluster's failed-record hand-off, and Sentinel.

Tests that flush scripts, kill clients or count commands run on a private ``redis-server``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.config import load_settings
from conveyor.drivers.base import Driver, FailedRecord, Message, QueueSize
from conveyor.drivers.redis import RedisDriver
from conveyor.drivers.redis.codec import pack_record
from conveyor.drivers.redis.connection import parse_url
from conveyor.errors import ConfigError, ConnectionUnavailable
from tests.contract.backends import redis as single
from tests.integration.redis_server import RedisServer, free_port, require_redis_binary


@pytest.fixture
def driver(redis_driver: Driver) -> RedisDriver:
    """Every test here runs on one Redis server and on a cluster (``redis_driver``)."""
    assert isinstance(redis_driver, RedisDriver)
    return redis_driver


@pytest.fixture
def private(tmp_path: Path) -> Iterator[RedisServer]:
    require_redis_binary()
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


def message(queue: str, delay: float = 0.0, id: str | None = None) -> Message:
    return Message(id or uuid.uuid4().hex, queue, b'{"n": 1}', delay)


def commands(server: RedisServer, name: str) -> int:
    with server.client() as c:
        stats = c.info("commandstats").get(f"cmdstat_{name}", {})
    return int(stats.get("calls", 0))


# --- URLs ------------------------------------------------------------------------------------
def test_url_forms_and_options() -> None:
    t = parse_url(
        "redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2:7001?socket_timeout=2&retry_window=1.5"
    )
    assert (t.mode, t.tls, t.nodes) == ("cluster", False, (("10.0.0.1", 7000), ("10.0.0.2", 7001)))
    assert (t.options["socket_timeout"], t.options["password"], t.retry_window) == (
        2.0,
        "s3cret",
        1.5,
    )
    s = parse_url("rediss+sentinel://s1:26379,s2/mymaster/2")
    assert (s.mode, s.tls, s.service, s.options["db"]) == ("sentinel", True, "mymaster", 2)
    assert s.nodes == (("s1", 26379), ("s2", 6379))
    assert parse_url("redis://localhost/3").options["db"] == 3


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis://localhost?sockettimeout=1", "unknown option 'sockettimeout'"),
        ("redis://localhost?socket_timeout=soon", "invalid socket_timeout"),
        ("redis://localhost:port", "invalid port"),
        ("redis://localhost?retry_window=0", "retry_window must be positive"),
        ("redis://a:1,b:2", r"use redis\+cluster://"),
        ("redis+cluster://a:1/2", "only database 0"),
        ("redis+sentinel://a:26379", "service name"),
    ],
)
def test_bad_urls_get_a_clear_error(url: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_url(url)


def test_cluster_and_sentinel_urls_are_valid_settings(tmp_path: Path) -> None:
    env = {"CONVEYOR_CONNECTION": "redis+cluster://127.0.0.1:7000"}
    assert load_settings(tmp_path, env=env).connection().scheme == "redis+cluster"


# --- availability --------------------------------------------------------------------------------
def test_push_to_a_server_that_is_down_raises_within_the_retry_window() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0?retry_window=0.5"
    drv = single.open_driver(url, single.new_prefix())
    started = time.monotonic()
    with pytest.raises(ConnectionUnavailable, match=r"unavailable for 0\.5s") as caught:
        drv.push(message("q"))
    assert isinstance(caught.value, ConnectionError)
    assert time.monotonic() - started < 3.0


def test_a_server_that_lost_its_scripts_gets_them_again(private: RedisServer) -> None:
    drv = single.open_driver(private.url, single.new_prefix())
    drv.push(message("q"))
    with private.client() as c:
        c.script_flush()
    drv.push(message("q"))
    assert drv.size("q").pending == 2


def test_killed_connections_are_replaced_even_mid_wait(private: RedisServer) -> None:
    drv = single.open_driver(private.url, single.new_prefix())
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(drv.reserve(["q"], 30, wait=5)))
    waiter.start()
    time.sleep(0.3)
    with private.client() as c:
        c.client_kill_filter(_type="normal", skipme=True)
    sent = message("q")
    single.open_driver(private.url, drv.prefix).push(sent)
    waiter.join(10)
    assert [getattr(r, "id", None) for r in got] == [sent.id]


def test_an_idle_wait_blocks_instead_of_polling(private: RedisServer) -> None:
    drv = single.open_driver(private.url, single.new_prefix())
    drv.push(message("warm-up"))
    before = commands(private, "evalsha")
    assert drv.reserve(["q"], 30, wait=1.0) is None
    assert commands(private, "evalsha") - before <= 3
    assert commands(private, "blpop") >= 1


# --- behaviour on both single server and cluster ------------------------------------------------
def test_pushing_an_id_again_stores_it_once(driver: RedisDriver) -> None:
    again = message("q")
    driver.push(again)
    driver.push_many([again, message("q")])
    assert driver.size("q").pending == 2


def test_one_script_call_stores_many_thousands_of_jobs_in_order(driver: RedisDriver) -> None:
    """As a large batch does: beyond what Lua can unpack into one command at once."""
    sent = [message("q") for _ in range(9000)]
    args = [item for m in sent for item in (m.id, m.payload, "0")]
    assert driver.conn.eval("push", driver.keys("q").for_store(), args) == 9000
    pending = driver.conn.run(lambda: driver.conn.client.lrange(driver.keys("q").pending, 0, -1))
    assert [p.decode() for p in pending] == [m.id for m in sent]


def test_a_claim_retried_after_a_lost_reply_gets_the_same_job(driver: RedisDriver) -> None:
    driver.push_many([message("q"), message("q")])
    keys = driver.keys("q").for_reserve()
    first = driver.conn.eval("reserve", keys, ["30", "lost-reply", 100, 1])
    again = driver.conn.eval("reserve", keys, ["30", "lost-reply", 100, 1])
    assert again[:4] == first[:4] and int(first[3]) == 1
    assert driver.size("q") == QueueSize(1, 0, 1)


def test_a_prefetch_retried_after_a_lost_reply_gets_the_same_job_uncounted(
    driver: RedisDriver,
) -> None:
    driver.push(message("q"))
    keys = driver.keys("q").for_reserve()
    first = driver.conn.eval("reserve", keys, ["0.2", "lost-reply", 100, 0])
    again = driver.conn.eval("reserve", keys, ["0.2", "lost-reply", 100, 0])
    assert again[:4] == first[:4] and int(first[3]) == 1
    time.sleep(0.3)
    back = driver.reserve(["q"], 30)
    assert back is not None and back.id == first[1].decode() and back.attempts == 1


def test_ack_and_reserve_acks_and_claims_in_priority_order(driver: RedisDriver) -> None:
    """On a cluster ``high`` and ``low`` live in different slots: ack, then claim, as two calls."""
    first, low, high = message("low"), message("low"), message("high")
    driver.push_many([first, low])
    held = driver.reserve(["low"], 30)
    assert held is not None and held.id == first.id
    driver.push(high)
    acked, claimed = held.ack_and_reserve(["high", "low"], 30)
    assert acked and claimed is not None
    assert (claimed.id, claimed.queue, claimed.attempts) == (high.id, "high", 1)
    assert driver.size("low") == QueueSize(1, 0, 0)
    acked, claimed = claimed.ack_and_reserve(["high", "low"], 30)
    assert acked and claimed is not None and claimed.id == low.id
    assert claimed.ack_and_reserve(["high", "low"], 30) == (True, None)
    assert driver.size("low").total == driver.size("high").total == 0


def test_ack_and_reserve_with_a_lost_lease_removes_nothing(driver: RedisDriver) -> None:
    driver.push(message("q"))
    stale = driver.reserve(["q"], 0.2)
    assert stale is not None
    time.sleep(0.3)
    owner = driver.reserve(["q"], 30)
    assert owner is not None and owner.id == stale.id and owner.attempts == 2
    driver.push(message("q"))
    acked, claimed = stale.ack_and_reserve(["q"], 30)
    assert not acked and claimed is not None and claimed.id != stale.id
    assert driver.size("q") == QueueSize(0, 0, 2)
    assert owner.ack()


def test_ack_and_reserve_retried_after_a_lost_reply_gets_the_same_job(
    driver: RedisDriver,
) -> None:
    driver.push_many([message("q"), message("q"), message("q")])
    held = driver.reserve(["q"], 30)
    assert held is not None
    k = driver.keys("q")
    keys = [*k.for_settle(), k.payload, k.attempts, *k.for_reserve()]
    args = [held.id, held.token, "30", "lost-reply", 100, 1]
    first = driver.conn.eval("ack_reserve", keys, args)
    again = driver.conn.eval("ack_reserve", keys, args)
    assert (first[0], again[0]) == (1, 0)
    assert again[1:5] == first[1:5] and int(first[4]) == 1
    assert driver.size("q") == QueueSize(1, 0, 1)


def test_ack_many_and_claim_retried_after_a_lost_reply_gets_the_same_jobs(
    driver: RedisDriver,
) -> None:
    driver.push_many([message("q") for _ in range(5)])
    held = driver.reserve(["q"], 30)
    assert held is not None
    k = driver.keys("q")
    keys = [k.token, k.attempts, k.reserved, k.pending, *k.for_settle(), k.payload, k.attempts]
    keys += k.for_reserve()
    args = ["30", "lost-reply", 100, 0, 2, "", "", 0, 1, held.id, held.token]
    first = driver.conn.eval("ack_many_claim", keys, args)
    again = driver.conn.eval("ack_many_claim", keys, args)
    assert (first[2], again[2]) == (1, 0), "acknowledged once"
    assert len(first) == 3 + 2 * 4 and again[3:] == first[3:], "the same two jobs, not two more"
    assert driver.size("q") == QueueSize(2, 0, 2)


def test_ack_many_and_claim_is_one_script_call(private: RedisServer) -> None:
    drv = single.open_driver(private.url, single.new_prefix())
    drv.push_many([message("q") for _ in range(6)])
    _, (a, b, c) = drv.ack_many_and_claim([], None, ["q"], 30, 3)
    before = commands(private, "evalsha")
    acked, claimed = drv.ack_many_and_claim([a, b], c, ["q"], 30, 3)
    assert acked == [True, True] and len(claimed) == 3
    assert commands(private, "evalsha") - before == 1


def test_ack_and_reserve_is_one_script_call(private: RedisServer) -> None:
    drv = single.open_driver(private.url, single.new_prefix())
    drv.push_many([message("q"), message("q")])
    held = drv.reserve(["q"], 30)
    assert held is not None
    before = commands(private, "evalsha")
    acked, claimed = held.ack_and_reserve(["q"], 30)
    assert acked and claimed is not None
    assert commands(private, "evalsha") - before == 1


def test_a_woken_wait_claims_in_the_same_round_trip(private: RedisServer) -> None:
    drv = single.open_driver(private.url, single.new_prefix())
    drv.push(message("warm-up"))
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(drv.reserve(["q"], 30, wait=5)))
    waiter.start()
    time.sleep(0.3)
    with private.client() as c:
        blocked = [b for b in c.client_list() if "b" in b["flags"]]
    # the claim is already at the server, queued behind the wait, not sent after it ends
    assert [(b["cmd"], int(b["qbuf"]) > 0) for b in blocked] == [("blpop", True)]
    sent = message("q")
    single.open_driver(private.url, drv.prefix).push(sent)
    waiter.join(10)
    assert [getattr(r, "id", None) for r in got] == [sent.id]


def test_a_wait_whose_script_the_server_forgot_still_claims(private: RedisServer) -> None:
    drv = single.open_driver(private.url, single.new_prefix())
    drv.push(message("warm-up"))
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(drv.reserve(["q"], 30, wait=5)))
    waiter.start()
    time.sleep(0.3)
    with private.client() as c:
        c.script_flush()
        c.lpush(drv.keys("q").notify, "1")  # wakes the waiter into a script Redis has lost
    time.sleep(0.3)
    sent = message("q")
    single.open_driver(private.url, drv.prefix).push(sent)
    waiter.join(10)
    assert [getattr(r, "id", None) for r in got] == [sent.id]


def test_a_wait_ends_when_a_lease_runs_out(driver: RedisDriver) -> None:
    driver.push(message("q"))
    first = driver.reserve(["q"], 0.3)
    assert first is not None
    again = driver.reserve(["q"], 30, wait=5)
    assert again is not None and (again.id, again.attempts) == (first.id, 2)


def test_cluster_wait_on_queues_in_several_slots(driver: RedisDriver) -> None:
    high, low = "high", "low"
    if driver.conn.cluster:
        assert driver.keys(high).slot != driver.keys(low).slot
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(driver.reserve([high, low], 30, wait=5)))
    waiter.start()
    time.sleep(0.3)
    sent = message(low)
    driver.push(sent)
    waiter.join(10)
    assert [getattr(r, "id", None) for r in got] == [sent.id]


def test_a_parked_failed_record_reaches_the_store_on_the_next_reserve(driver: RedisDriver) -> None:
    """A cluster worker that died between parking a failed record and moving it."""
    driver.push(message("q"))
    held = driver.reserve(["q"], 30)
    assert held is not None
    record = FailedRecord(held.id, driver.connection, "q", held.payload, "boom", time.time())
    k = driver.keys("q")
    parked = driver.conn.eval(
        "fail_handoff", [*k.for_settle(), k.payload, k.attempts, k.handoff],
        [held.id, held.token, held.id, pack_record(record)],
    )  # fmt: skip
    assert parked == 1
    assert driver.failed.get(held.id) is None
    assert driver.reserve(["q"], 30) is None
    stored = driver.failed.get(held.id)
    assert stored is not None and stored.exception == "boom"
    assert driver.conn.run(lambda: driver.conn.client.hlen(k.handoff)) == 0


# --- Sentinel ---------------------------------------------------------------------------------
def test_sentinel_url_finds_the_master(private: RedisServer, tmp_path: Path) -> None:
    sentinel = RedisServer(tmp_path / "sentinel", "--sentinel")
    conf = sentinel.folder / "sentinel.conf"
    conf.write_text(f"sentinel monitor main 127.0.0.1 {private.port} 1\n")
    sentinel.start()
    try:
        drv: Driver = single.open_driver(f"redis+sentinel://127.0.0.1:{sentinel.port}/main/0", "s")
        sent = message("q")
        drv.push(sent)
        held = drv.reserve(["q"], 30)
        assert held is not None and held.id == sent.id and held.ack()
        with private.client() as c:
            assert c.exists("{s}:queues") == 1
    finally:
        sentinel.stop()


@pytest.mark.parametrize("started_by", ["begin", "round trip"])
def test_a_prefetched_job_whose_lease_ran_out_is_held_again_when_it_starts(
    driver: RedisDriver, started_by: str
) -> None:
    """An outage longer than the lease of a job claimed ahead: when it starts, nobody else may
    claim it while it runs (its lease ran out, or a claim swept it back to pending)."""
    queue = f"q{uuid.uuid4().hex[:6]}"
    driver.push(Message(uuid.uuid4().hex, queue, b"{}"))
    _, held = driver.ack_many_and_claim([], None, [queue], 0.2, 1)
    assert len(held) == 1
    time.sleep(0.3)
    if started_by == "begin":
        assert held[0].begin() is True
    else:
        acked, claimed = driver.ack_many_and_claim([], held[0], [queue], 30, 0)
        assert (acked, claimed) == ([], [])
    assert driver.reserve([queue], 30) is None, "another worker claimed the running job"
    assert driver.size(queue) == QueueSize(0, 0, 1)
    assert held[0].ack() is True
