"""An SQLite file that cannot be opened or written is one line and exit 1, as a down server is.

Two real conditions: a folder where the database file should be, and a process whose file-size
limit (``RLIMIT_FSIZE`` 0, ``SIGXFSZ`` ignored) makes every write fail as on a full disk.
"""

from __future__ import annotations

import resource
import signal
import subprocess
from pathlib import Path

import pytest

from conveyor import Conveyor, Job, load_settings
from conveyor.errors import ConnectionUnavailable

from .conftest import CONVEYOR, Project

COMMANDS = [["status"], ["failed"], ["retry", "all"], ["forget", "1"]]


class Nothing(Job):
    def handle(self) -> None: ...


def _no_writes() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def assert_one_line_exit_1(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: SQLite database ") and " unavailable: " in lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_in_place_of_the_database(workspace: Project, command: list[str]) -> None:
    (workspace.root / "conveyor.db").mkdir()
    result = workspace.run(*command)
    assert_one_line_exit_1(result)
    assert "unable to open database file" in result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_that_cannot_be_written(workspace: Project, command: list[str]) -> None:
    assert CONVEYOR is not None
    result = subprocess.run(
        [CONVEYOR, *command], cwd=workspace.root, env=workspace.env, capture_output=True,
        text=True, timeout=60, preexec_fn=_no_writes,
    )  # fmt: skip
    assert_one_line_exit_1(result)


def test_dispatch_raises_connection_unavailable(tmp_path: Path) -> None:
    (tmp_path / "conveyor.db").mkdir()
    app = Conveyor(load_settings(tmp_path, env={}))
    try:
        with pytest.raises(ConnectionUnavailable, match="unable to open database file"):
            Nothing().pending().using(app).dispatch()
    finally:
        app.close()
