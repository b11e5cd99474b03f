"""``conveyor``: the command group and its global options."""

from __future__ import annotations

import click

from .batches import batches
from .common import State
from .failed import failed, flush, forget, retry
from .queue import clear, config, migrate, restart
from .scaffold import make_job
from .status import status
from .work import work


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--app",
    "app_modules",
    multiple=True,
    metavar="MODULE",
    envvar="CONVEYOR_APP",
    help="Module that defines your jobs (repeatable). Also CONVEYOR_APP or `app` in the config; "
    "every command takes it after its name too: conveyor work --app myapp.jobs",
)
@click.option("-v", "--verbose", count=True, help="More output (-vv for debug logs).")
@click.version_option(package_name="conveyor")
@click.pass_context
def cli(ctx: click.Context, app_modules: tuple[str, ...], verbose: int) -> None:
    """Conveyor: background jobs for Python, the way Laravel's queues do them.

    \b
    Quick tour:
      conveyor work --queue high,default      run a worker
      conveyor status                         what waits, what runs, who works
      conveyor failed                         list failed jobs; then `conveyor retry all`
      conveyor restart                        let every worker exit after its job (deploys)

    Settings come from conveyor.toml or [tool.conveyor] in pyproject.toml, then CONVEYOR_*.
    Exit codes: 0 done, 1 not found / unavailable, 2 bad usage or config.
    """
    ctx.obj = State(app_modules, verbose)


cli.add_command(work)
cli.add_command(failed)
cli.add_command(retry)
cli.add_command(forget)
cli.add_command(flush)
cli.add_command(clear)
cli.add_command(status)
cli.add_command(restart)
cli.add_command(migrate)
cli.add_command(config)
cli.add_command(make_job)
cli.add_command(batches)


def main() -> None:
    cli(prog_name="conveyor")
