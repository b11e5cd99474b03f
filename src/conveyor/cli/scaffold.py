"""``conveyor make-job``: write a job class to start from (Laravel's make:job)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from .common import console, fail

_TEMPLATE = '''"""{name}: describe what this job does and why it runs in the background."""

from __future__ import annotations

from conveyor import Job


class {name}(Job):
    user_id: int

    tries = 3
    timeout = 120
    backoff = [10, 30, 60]

    def handle(self) -> None:
        """Do the work. Fetch what you need by id here rather than passing whole objects."""
        raise NotImplementedError

    def failed(self, exc: BaseException) -> None:
        """Called once when every attempt has failed: log, notify, undo."""
'''


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@click.command("make-job")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    default="jobs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder to write into.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def make_job(name: str, directory: str, force: bool) -> None:
    """Create a job class file, e.g. jobs/send_welcome_email.py.

    \b
    Example:
      conveyor make-job SendWelcomeEmail
    """
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
        fail(f"job name must be a CapitalizedName like SendWelcomeEmail, got {name!r}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    init = folder / "__init__.py"
    if not init.exists():
        init.write_text("")
    target = folder / f"{_snake(name)}.py"
    if target.exists() and not force:
        fail(f"{target} exists; use --force to overwrite it")
    target.write_text(_TEMPLATE.format(name=name))
    console.print(
        f"Created {target}. Point workers at it: conveyor --app {folder.name}.{target.stem} work"
    )
