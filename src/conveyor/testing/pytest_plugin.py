"""The pytest fixtures of Conveyor, registered through the ``pytest11`` entry point: any project
that installs Conveyor has them, with no import.

- ``conveyor_app``: the app the other fixtures work on (the current one); override it in a
  ``conftest.py`` to hand them your own.
- ``conveyor_fake``: a ``QueueFake`` on that app for the test.
- ``conveyor_queue``: an ``IsolatedQueue`` for the test, in an SQLite file of the test's own;
  ``@pytest.mark.conveyor_queue(url="redis://...")`` puts it under a key prefix of its own on
  that Redis, ``url="postgresql://..."`` in a schema of its own, removed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..app import Conveyor, current_app
from .fake import QueueFake
from .isolated import IsolatedQueue


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "conveyor_queue(url): put the conveyor_queue fixture on this Redis or PostgreSQL server",
    )


@pytest.fixture
def conveyor_app() -> Conveyor:
    """The app ``conveyor_fake`` fakes: the current one; override it to hand your own."""
    return current_app()


@pytest.fixture
def conveyor_fake(conveyor_app: Conveyor) -> Iterator[QueueFake]:
    """A ``QueueFake`` on ``conveyor_app`` for this test: nothing dispatched is stored."""
    with QueueFake(conveyor_app) as fake:
        yield fake


@pytest.fixture
def conveyor_queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IsolatedQueue]:
    """A real queue of this test's own (SQLite in ``tmp_path``, or the server of the
    ``conveyor_queue(url=...)`` marker), its app current for the test."""
    marker = request.node.get_closest_marker("conveyor_queue")
    url = marker.kwargs.get("url") if marker is not None else None
    with IsolatedQueue(tmp_path, url) as queue:
        yield queue
