"""Redis Cluster backend for the contract suite: a real three-node cluster, started once.

The nodes are ``redis-server --cluster-enabled yes`` processes on free loopback ports in a
temporary folder, joined by ``redis-cli --cluster create``; they live for the test session and
are stopped at its end. Each test gets its own key prefix, deleted after it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from conveyor.drivers.base import Driver
from tests.contract.backends.redis import delete_prefix, new_prefix, open_driver

NODES = 3
_cluster: RedisCluster | None = None


def free_port() -> int:
    """A loopback port that is free, and whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free loopback port pair for a cluster node")


class RedisCluster:
    """Three master nodes, no replicas, no persistence: fast to start, gone when stopped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self) -> RedisCluster:
        for _ in range(NODES):
            port = free_port()
            folder = self.root / str(port)
            folder.mkdir(parents=True)
            log = (folder / "redis.log").open("wb")
            self.procs.append(subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                 "--save", "", "--appendonly", "no", "--dir", str(folder)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            ))  # fmt: skip
            self.ports.append(port)
        for port in self.ports:
            self._wait(lambda p=port: redis.Redis(port=p).ping(), f"node {port} to answer")  # type: ignore[misc]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        for port in self.ports:
            self._wait(lambda p=port: self._state_ok(p), f"node {port} to see the cluster ok")  # type: ignore[misc]
        return self

    @staticmethod
    def _state_ok(port: int) -> bool:
        info = redis.Redis(port=port).cluster("INFO")
        return bool(info.get("cluster_state") == "ok")

    @staticmethod
    def _wait(check: object, what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if check():  # type: ignore[operator]
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis Cluster: timed out waiting for {what}")
            time.sleep(0.05)

    def delete_prefix(self, prefix: str) -> None:
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                delete_prefix(client, prefix)
            finally:
                client.close()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def cluster(request: pytest.FixtureRequest) -> RedisCluster:
    """The session's cluster, started on first use and stopped when pytest finishes."""
    global _cluster
    if _cluster is None:
        if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
            message = "redis-server and redis-cli are needed to start a Redis Cluster"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"{message} (CI=true: backends must be up)")
            pytest.skip(message)
        root = request.getfixturevalue("tmp_path_factory").mktemp("redis-cluster")
        started = RedisCluster(root)
        request.config.add_cleanup(started.stop)
        _cluster = started.start()
    return _cluster


def make(tmp_path: Path, request: pytest.FixtureRequest) -> Driver:
    nodes = cluster(request)
    prefix = new_prefix()
    request.addfinalizer(lambda: nodes.delete_prefix(prefix))
    return open_driver(nodes.url, prefix)
