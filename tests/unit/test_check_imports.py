"""tools/check_imports.py: finds an import circle, whether the imports sit in functions or not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO / "tools" / "check_imports.py"


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), str(root)], capture_output=True, text=True, check=False
    )


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "conveyor"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_a_circle_through_a_function_level_import_fails(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "low.py": "def f():\n    from .high import g\n    return g\n",
            "high.py": "from . import low\n",
            "alone.py": "from .low import f\n",
        },
    )
    done = _check(root)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "import circle of 2 modules: conveyor.high -> conveyor.low -> conveyor.high"
        " (all: conveyor.high, conveyor.low)"
    ]


def test_type_checking_imports_and_downward_ones_pass(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "low.py": "import typing\nif typing.TYPE_CHECKING:\n    from .high import g\n",
            "high.py": "from .low import *\n",
        },
    )
    done = _check(root)
    assert (done.returncode, done.stdout) == (0, "")


def test_the_package_has_no_import_circle() -> None:
    done = _check(REPO / "src" / "conveyor")
    assert (done.returncode, done.stdout) == (0, "")
