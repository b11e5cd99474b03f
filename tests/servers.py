"""Reaching the real servers the tests use, with the CI rule: missing fails under CI=true."""

from __future__ import annotations

import os
import socket

import pytest

REDIS_URL = os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("CONVEYOR_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_server(url: str, host: str, port: int) -> None:
    """Skip (or fail under CI=true) when the server at ``url`` does not answer."""
    if port_open(host, port):
        return
    message = f"server for {url} is not reachable on {host}:{port}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{message} (CI=true: backends must be up)")
    pytest.skip(message)
