"""Each peer library lives in its own virtual environment, built on demand from a pinned file.

Their pins conflict with each other (arq wants redis-py < 6, taskiq-redis wants 8) and none of
them belongs in Conveyor's own dependencies, so ``bench/.venvs/<name>`` is made from
``bench/requirements/<name>.txt`` the first time a run needs it. Conveyor itself runs from the
project's own ``.venv``, the environment ``make bench`` uses.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
VENVS = BENCH / ".venvs"
REQUIREMENTS = BENCH / "requirements"


def python_for(name: str) -> Path:
    if name == "conveyor":
        return Path(sys.executable)
    return VENVS / name / "bin" / "python"


def ensure(name: str, log: Path) -> str:
    """Build or refresh the venv of ``name``; returns '' when ready, else why it is not."""
    if name == "conveyor":
        return ""
    req = REQUIREMENTS / f"{name}.txt"
    if not req.is_file():
        return f"no pinned requirements at bench/requirements/{name}.txt"
    venv = VENVS / name
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest and python_for(name).exists():
        return ""
    print(f"  building bench/.venvs/{name} from {req.name} ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python_for(name)), "-m", "pip", "install", "--quiet", "-r", str(req)],
    ]
    with log.open("a") as out:
        for step in steps:
            done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                return f"could not install {req.name} (exit {done.returncode}; see {log.name})"
    stamp.write_text(digest)
    return ""
