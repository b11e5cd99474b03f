"""``status``, ``clear``, ``restart``, ``migrate`` and ``config`` run as a user would."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace

from conveyor.cli.status import FAILED_PAGE

from .conftest import Project
from .tables import row


def test_status_shows_counts_per_queue_and_says_no_worker_is_running(workspace: Project) -> None:
    workspace.enqueue("Ok")
    workspace.enqueue("Ok")
    workspace.enqueue("Ok", delay=600)
    workspace.enqueue("Ok", queue="emails")
    workspace.add_failed(queue="emails")
    result = workspace.run("status")
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "default")[1:] == ["2", "1", "0", "0"]
    assert row(result.stdout, "emails")[1:] == ["1", "0", "0", "1"]
    assert "4 job(s) are waiting and no worker has been seen on 'database'" in result.stdout
    suggested = _suggested(result.stdout)
    assert suggested == ["conveyor", "work", "--queue", "emails,default"]
    ran = workspace.run(*suggested[1:], "--stop-when-empty")
    assert ran.returncode == 0, ran.stderr
    assert len(workspace.ran()) == 3, "the pending jobs of both queues ran"


def _suggested(output: str) -> list[str]:
    """The command status suggests, as words (it is the last thing printed)."""
    return " ".join(output.split()).split("Start one: ", 1)[1].split()


def test_status_lists_every_queue_with_jobs_in_any_state(workspace: Project) -> None:
    workspace.add_failed(queue="emails")
    workspace.enqueue("Ok", queue="later", delay=600)
    result = workspace.run("status")
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "default")[1:] == ["0", "0", "0", "0"]
    assert row(result.stdout, "emails")[1:] == ["0", "0", "0", "1"]
    assert row(result.stdout, "later")[1:] == ["0", "1", "0", "0"]
    assert _suggested(result.stdout) == ["conveyor", "work", "--queue", "emails,later"]


def test_status_finds_failed_queues_beyond_the_first_page(workspace: Project) -> None:
    rare = workspace.add_failed(queue="rare")
    for n in range(FAILED_PAGE):
        workspace.driver.failed.record(replace(rare, uuid=f"often{n}", queue="often", id=None))
    result = workspace.run("status")
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "often")[1:] == ["0", "0", "0", str(FAILED_PAGE)]
    assert row(result.stdout, "rare")[1:] == ["0", "0", "0", "1"]


def test_status_names_queues_no_live_worker_takes_and_how_to_take_them(
    workspace: Project,
) -> None:
    worker = workspace.start("work", "--sleep", "0.2")
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not workspace.driver.workers(15):
            time.sleep(0.1)
        workspace.enqueue("Ok", queue="emails", tag="welcome")
        result = workspace.run("status")
    finally:
        worker.terminate()
        worker.communicate(timeout=20)
    assert result.returncode == 0, result.stderr
    assert "1 job(s) wait on emails, which no worker seen in the last 15s takes" in result.stdout
    suggested = _suggested(result.stdout)
    assert suggested == ["conveyor", "work", "--queue", "emails"]
    ran = workspace.run(*suggested[1:], "--stop-when-empty")
    assert ran.returncode == 0, ran.stderr
    assert workspace.ran() == ["ok welcome"]


def test_status_of_an_idle_project(workspace: Project) -> None:
    result = workspace.run("status", "--queue", "a,b")
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "a")[1:] == ["0", "0", "0", "0"]
    assert row(result.stdout, "b")[1:] == ["0", "0", "0", "0"]
    assert "No worker has been seen on 'database'" in result.stdout
    assert "waiting" not in result.stdout


def test_status_lists_a_running_worker(workspace: Project) -> None:
    worker = workspace.start("work", "--sleep", "0.2")
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not workspace.driver.workers(15):
            time.sleep(0.1)
        workspace.enqueue("Ok", delay=600)
        result = workspace.run("status")
    finally:
        worker.terminate()
        worker.communicate(timeout=20)
    assert result.returncode == 0
    assert f":{worker.pid}:" in result.stdout
    assert "no worker has been seen" not in result.stdout.lower()


def test_status_shows_the_job_a_worker_runs_and_when_it_was_last_seen(
    workspace: Project,
) -> None:
    worker = workspace.start("work", "--sleep", "0.2")
    try:
        job_id = workspace.enqueue("Slow", seconds=30, tag="long")
        deadline = time.monotonic() + 20
        beats = workspace.driver.workers(15)
        while time.monotonic() < deadline and not any(b.current_job == job_id for b in beats):
            time.sleep(0.2)
            beats = workspace.driver.workers(15)
        result = workspace.run("status")
    finally:
        worker.terminate()
        time.sleep(0.5)
        worker.terminate()  # the second signal hands the long job back at once
        worker.communicate(timeout=20)
    assert result.returncode == 0, result.stderr
    _, queues, up, seen, jobs, running = row(result.stdout, beats[0].id)
    assert (queues, jobs, running) == ("default", "0", job_id)
    assert up.endswith("s") and seen.endswith("s ago") and int(seen.split("s")[0]) <= 15


def test_clear_with_force_empties_one_queue(workspace: Project) -> None:
    for _ in range(3):
        workspace.enqueue("Ok")
    workspace.enqueue("Ok", delay=600)
    workspace.enqueue("Ok", queue="emails")
    result = workspace.run("clear", "--force")
    assert result.returncode == 0, result.stderr
    assert "Cleared 4 job(s) from database:default" in result.stdout
    assert workspace.driver.size("default").total == 0
    assert workspace.driver.size("emails").pending == 1
    other = workspace.run("clear", "database", "--queue", "emails", "--force")
    assert "Cleared 1 job(s) from database:emails" in other.stdout
    assert workspace.driver.size("emails").total == 0


def test_clear_asks_first_and_keeps_the_jobs_when_refused(workspace: Project) -> None:
    workspace.enqueue("Ok")
    refused = workspace.run("clear", input="n\n")
    assert refused.returncode == 1
    assert "Delete all jobs of queue 'default'" in refused.stdout
    assert workspace.driver.size("default").pending == 1
    accepted = workspace.run("clear", input="y\n")
    assert accepted.returncode == 0
    assert workspace.driver.size("default").total == 0


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_restart_makes_a_running_worker_exit_after_its_job(workspace: Project) -> None:
    worker = workspace.start("work", "--sleep", "0.2")
    try:
        workspace.enqueue("Slow", seconds=3, tag="current")
        wait_for((workspace.root / "started.flag").exists, 20)
        workspace.enqueue("Ok", tag="next")
        result = workspace.run("restart")
        assert result.returncode == 0, result.stderr
        assert "Restart signal sent to workers on database" in result.stdout
        assert workspace.ran() == [], "the restart must arrive while the job runs"
        code = worker.wait(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
        _, stderr = worker.communicate()
    assert code == 0, stderr
    assert "slow current" in workspace.ran(), "the current job finished"
    assert "restart requested" in stderr
    assert workspace.driver.size("default").pending == 1, "no new job was started"


def test_migrate_creates_the_tables(workspace: Project) -> None:
    result = workspace.run("migrate")
    assert result.returncode == 0, result.stderr
    assert "Schema of database is up to date" in result.stdout
    with sqlite3.connect(workspace.root / "conveyor.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"conveyor_jobs", "conveyor_failed_jobs", "conveyor_workers"} <= tables
    assert workspace.run("migrate").returncode == 0, "migrating twice is harmless"


def test_config_prints_resolved_settings_and_masks_passwords(workspace: Project) -> None:
    url = "postgresql://app:s3cret-pw@db.internal:5432/jobs"
    result = workspace.run("config", env={"CONVEYOR_CONNECTION": url})
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "postgresql://app:***@db.internal:5432/jobs" in result.stdout
    assert "default:     CONVEYOR_CONNECTION" in result.stdout
    assert str(workspace.root / "conveyor.toml") in result.stdout
    assert "app:         clijobs" in result.stdout
    assert row(result.stdout, "database")[3] == "3"


def test_config_and_status_mask_a_password_in_the_query_string(workspace: Project) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/test?password=qu3ry-pw&connect_timeout=5"
    env = {"CONVEYOR_CONNECTION": url}
    shown = "postgresql://postgres@127.0.0.1:5432/test?password=***&connect_timeout=5"
    for command in (["config"], ["status", "--queue", "cli-mask-check"]):
        result = workspace.run(*command, env=env)
        assert result.returncode == 0, result.stderr
        assert "qu3ry-pw" not in result.stdout + result.stderr
        assert shown in result.stdout.replace("\n", "").replace(" ", ""), result.stdout


def test_a_connection_given_by_url_is_named_after_its_variable(workspace: Project) -> None:
    url = f"sqlite:///{workspace.root / 'from-env.db'}"
    result = workspace.run("status", env={"CONVEYOR_CONNECTION": url})
    assert result.returncode == 0, result.stderr
    assert "Queues on CONVEYOR_CONNECTION" in result.stdout
    assert "No worker has been seen on 'CONVEYOR_CONNECTION'" in result.stdout
    shown = workspace.run("config", env={"CONVEYOR_CONNECTION": url})
    assert "default:     CONVEYOR_CONNECTION" in shown.stdout
    assert row(shown.stdout, "CONVEYOR_CONNECTION")[1] == url
