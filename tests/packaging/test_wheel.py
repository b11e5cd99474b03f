"""The way users install Conveyor: a wheel built from this tree, installed into a fresh virtual
environment without the development tools, then run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import conveyor

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "PYTHON"))}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def test_the_wheel_installs_into_a_fresh_venv_and_runs_the_demo(tmp_path: Path) -> None:
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
        tmp_path / "dist", ROOT, cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheels = list((tmp_path / "dist").glob("conveyor-*.whl"))
    assert [w.name for w in wheels] == [f"conveyor-{conveyor.__version__}-py3-none-any.whl"]

    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "--quiet", wheels[0], cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    version = _run(venv / "bin" / "conveyor", "--version", cwd=tmp_path)
    assert version.returncode == 0 and conveyor.__version__ in version.stdout
    # the Lua scripts and py.typed travel in the wheel
    files = _run(python, "-c", "import conveyor, pathlib; p = pathlib.Path(conveyor.__file__)"
                 ".parent; print(sorted(x.name for x in p.rglob('*.lua'))[:3],"
                 " (p / 'py.typed').exists())", cwd=tmp_path)  # fmt: skip
    assert "'ack.lua'" in files.stdout and "True" in files.stdout, files.stderr

    demo = _run(python, "-m", "conveyor.demo", cwd=tmp_path, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "conveyor failed" in demo.stdout
