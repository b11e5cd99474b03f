"""Shared fixtures: an isolated app per test, and real backends when a test needs one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, set_app
from conveyor.config import load_settings


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder as the working directory, with no CONVEYOR_* leaking in."""
    for key in list(__import__("os").environ):
        if key.startswith("CONVEYOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def app(project: Path) -> Iterator[Conveyor]:
    """A Conveyor on an SQLite file in the test's own folder, made the default for dispatch()."""
    conveyor = Conveyor(load_settings(project, env={}))
    previous = set_app(conveyor)
    try:
        yield conveyor
    finally:
        set_app(previous)
        conveyor.close()
