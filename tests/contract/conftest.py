"""The contract suite runs once per backend; each backend module lives in ``backends/``."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.drivers.base import Driver

#: backend name -> module under tests/contract/backends exposing make(tmp_path, request)
BACKENDS = ["sqlite", "postgres", "mysql", "redis", "redis_cluster"]


def _available() -> list[str]:
    found = []
    for name in BACKENDS:
        try:
            importlib.import_module(f"tests.contract.backends.{name}")
        except ModuleNotFoundError:
            continue
        found.append(name)
    return found


@pytest.fixture(params=_available())
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    module = importlib.import_module(f"tests.contract.backends.{request.param}")
    drv: Driver = module.make(tmp_path, request)
    try:
        yield drv
    finally:
        drv.close()


@pytest.fixture(params=["redis", "redis_cluster"])
def redis_driver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driver]:
    """For the Redis-only tests: one server and a cluster, each test on its own key prefix."""
    module = importlib.import_module(f"tests.contract.backends.{request.param}")
    drv: Driver = module.make(tmp_path, request)
    try:
        yield drv
    finally:
        drv.close()
