"""``conveyor batches``: list, show, cancel, retry and prune, as a user runs them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from conveyor import Conveyor, batch, find_batch

from .jobs import Flaky, Step, read_records


def run(*args: str) -> Result:
    return CliRunner().invoke(__import__("conveyor.cli.main").cli.main.cli, list(args))


def test_list_show_cancel_retry_prune(
    sqlite_app: Conveyor, project: Path, drain: Callable[..., int]
) -> None:
    done = batch([Step(key="a"), Flaky(key="f"), Step(key="b")]).allow_failures().name("import")
    first = done.dispatch()
    drain(sqlite_app)
    waiting = batch([Step(key=f"w{i}") for i in range(4)]).name("waiting").dispatch()

    listed = run("batches", "--json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert [r["name"] for r in rows] == ["waiting", "import"]
    assert (rows[1]["progress"], rows[1]["failed_jobs"], rows[1]["finished"]) == (66, 1, True)
    table = run("batches")
    assert table.exit_code == 0 and "Progress" in table.output and "66%" in table.output

    shown = run("batches", "show", first.id)
    failed_id = first.fresh().failed_job_ids[0]
    assert shown.exit_code == 0 and "66%" in shown.output and failed_id in shown.output

    cancelled = run("batches", "cancel", waiting.id)
    assert cancelled.exit_code == 0 and "4 pending job(s) will skip" in cancelled.output
    assert waiting.fresh().cancelled()

    retried = run("batches", "retry", first.id)
    assert retried.exit_code == 0 and "Queued 1 failed job(s)" in retried.output
    assert first.fresh().failed_jobs == 0
    drain(sqlite_app)
    assert first.fresh().progress() == 100
    assert {r["key"] for r in read_records(project, "run")} == {"a", "b", "f"}  # w* skipped

    pruned = run("batches", "prune", "--hours", "0")
    assert pruned.exit_code == 0 and "Deleted 2 batch record(s)" in pruned.output
    assert find_batch(first.id) is None and find_batch(waiting.id) is None


def test_an_unknown_batch_exits_1_with_one_line(sqlite_app: Conveyor) -> None:
    for command in ("show", "cancel", "retry"):
        result = run("batches", command, "nope")
        assert result.exit_code == 1
        assert "no batch with id nope" in result.output
        assert "Traceback" not in result.output


def test_a_batch_name_with_markup_and_escapes_prints_inert(sqlite_app: Conveyor) -> None:
    name = "[/]\x1b]0;pwned\x07\u202eevil"
    made = batch([Step(key="a")]).name(name).dispatch()
    for args in (["batches"], ["batches", "show", made.id]):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert "[/]" in result.output
        assert not {"\x1b", "\x07", "\u202e"} & set(result.output), repr(result.output)
