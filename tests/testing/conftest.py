"""The tests of ``conveyor.testing`` run on the ``app`` fixture (an SQLite file in the test's
folder), handed to the plugin's fixtures by overriding ``conveyor_app``, with the jobs and
callbacks of ``tests.testing.jobs`` as its app module (a drain runs callbacks only from there,
as a worker would)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor import Conveyor
from tests.testing import jobs


@pytest.fixture
def conveyor_app(app: Conveyor) -> Conveyor:
    app.registry.allow("tests.testing.jobs")
    return app


@pytest.fixture(autouse=True)
def ran() -> Iterator[list[str]]:
    jobs.RAN.clear()
    yield jobs.RAN
    jobs.RAN.clear()
