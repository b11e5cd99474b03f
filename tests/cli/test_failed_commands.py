"""``failed``, ``retry``, ``forget`` and ``flush``: the failed-jobs store from the shell."""

from __future__ import annotations

import json

import pytest

from conveyor.envelope import decode

from .conftest import Project
from .tables import row, rows


def test_a_failing_job_shows_up_in_the_failed_table(workspace: Project) -> None:
    job_id = workspace.enqueue("Boom", queue="emails")
    worker = workspace.run("work", "--queue", "emails", "--stop-when-empty")
    assert worker.returncode == 0, worker.stderr
    result = workspace.run("failed")
    assert result.returncode == 0, result.stderr
    record = workspace.driver.failed.get(job_id)
    assert record is not None
    cells = row(result.stdout, str(record.id))
    assert cells[1:5] == ["database", "emails", "clijobs:Boom", cells[4]]
    assert cells[5] == "RuntimeError: exploded on purpose"
    assert "Failed jobs (1)" in result.stdout


def test_failed_filters_by_queue_and_says_when_there_are_none(workspace: Project) -> None:
    assert "No failed jobs." in workspace.run("failed").stdout
    a = workspace.add_failed(queue="a")
    workspace.add_failed(queue="b")
    result = workspace.run("failed", "--queue", "a")
    assert [r[0] for r in rows(result.stdout)] == [str(a.id)]


def test_failed_json_prints_one_object_per_line(workspace: Project) -> None:
    first = workspace.add_failed(queue="a")
    second = workspace.add_failed(queue="b", job="Ok")
    result = workspace.run("failed", "--json")
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert [i["uuid"] for i in items] == [second.uuid, first.uuid], "newest first"
    assert items[0]["job"] == "clijobs:Ok" and items[1]["queue"] == "a"
    assert items[1]["exception"].endswith("RuntimeError: exploded on purpose")
    assert decode(items[1]["payload"].encode()).id == first.uuid


def test_a_markup_like_error_is_shown_as_it_is(workspace: Project) -> None:
    record = workspace.add_failed(error="KeyError: '[/red] [bold]x'")
    result = workspace.run("failed")
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, str(record.id))[5] == "KeyError: '[/red] [bold]x'"


def test_retry_puts_the_job_back_and_a_worker_then_runs_it(workspace: Project) -> None:
    record = workspace.add_failed(job="Ok")
    result = workspace.run("retry", str(record.id))
    assert result.returncode == 0, result.stderr
    assert f"Queued failed job {record.id} (clijobs:Ok) again as {record.uuid}" in result.stdout
    assert workspace.driver.failed.count() == 0
    assert workspace.driver.size("default").pending == 1
    assert workspace.run("work", "--stop-when-empty").returncode == 0
    assert workspace.ran() == ["ok "]


def test_retry_all_for_one_queue(workspace: Project) -> None:
    for _ in range(3):
        workspace.add_failed(queue="mail")
    workspace.add_failed(queue="other")
    result = workspace.run("retry", "all", "--queue", "mail")
    assert result.returncode == 0, result.stderr
    assert "Queued 3 failed job(s) again." in result.stdout
    assert workspace.driver.size("mail").pending == 3
    assert workspace.driver.failed.count("other") == 1
    assert workspace.driver.failed.count("mail") == 0


def test_retry_an_unknown_id_exits_1(workspace: Project) -> None:
    result = workspace.run("retry", "999")
    assert result.returncode == 1
    assert "no failed job with id 999" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("key", ["\u00b2", "99999999999999999999999", "9" * 5000])
@pytest.mark.parametrize("command", ["retry", "forget"])
def test_an_odd_id_is_one_line_and_exit_1(workspace: Project, command: str, key: str) -> None:
    workspace.add_failed()
    result = workspace.run(command, key)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: no failed job with id ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert workspace.driver.failed.count() == 1


def test_retry_needs_an_id(workspace: Project) -> None:
    result = workspace.run("retry")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr


def test_forget_deletes_without_retrying(workspace: Project) -> None:
    record = workspace.add_failed()
    result = workspace.run("forget", str(record.id))
    assert result.returncode == 0, result.stderr
    assert f"Forgot failed job {record.id}." in result.stdout
    assert workspace.driver.failed.count() == 0
    assert workspace.driver.size("default").total == 0
    again = workspace.run("forget", str(record.id))
    assert again.returncode == 1
    assert f"no failed job with id {record.id}" in again.stderr


def test_flush_hours_deletes_only_old_failures(workspace: Project) -> None:
    old = workspace.add_failed(age=3 * 3600)
    recent = workspace.add_failed(age=60)
    result = workspace.run("flush", "--hours", "2")
    assert result.returncode == 0, result.stderr
    assert "Deleted 1 failed job(s)." in result.stdout
    assert workspace.driver.failed.get(old.uuid) is None
    assert workspace.driver.failed.get(recent.uuid) is not None
    assert "Deleted 1 failed job(s)." in workspace.run("flush").stdout
    assert workspace.driver.failed.count() == 0


def test_flush_with_bad_hours_is_a_usage_error(workspace: Project) -> None:
    result = workspace.run("flush", "--hours", "soon")
    assert result.returncode == 2
    assert "--hours" in result.stderr
