from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.drivers.base import Driver
from conveyor.drivers.database.driver import DatabaseDriver
from conveyor.drivers.database.sqlite import SQLiteDialect


def make(tmp_path: Path, request: pytest.FixtureRequest) -> Driver:
    return DatabaseDriver(
        "contract", SQLiteDialect(str(tmp_path / "contract.db")), auto_migrate=True
    )
