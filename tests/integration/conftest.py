"""Fixtures for tests that run real worker processes; generic, so every backend suite reuses them.

``project`` and ``app`` (tests/conftest.py) give the folder and the dispatching side; ``workers``
starts ``conveyor work`` processes in that folder and kills whatever is left at the end.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .harness import Workers, run_conveyor


@pytest.fixture
def workers(project: Path) -> Iterator[Workers]:
    """``workers.start("--stop-when-empty", env={...})`` -> a handle; none outlives the test."""
    started = Workers(project)
    try:
        yield started
    finally:
        started.cleanup()


@pytest.fixture(params=["concurrent", "serial"])
def both_executors(project: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    """``workers``, once with the default executor child (an event loop, ``--concurrency``)
    and once with the plain one (``--concurrency 1``): both must keep every promise."""
    started = Workers(project, ("--concurrency", "1") if request.param == "serial" else ())
    try:
        yield started
    finally:
        started.cleanup()


@pytest.fixture
def conveyor_cli(project: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``conveyor_cli("restart")`` runs one command in the project folder and returns its result."""
    return functools.partial(run_conveyor, project)
