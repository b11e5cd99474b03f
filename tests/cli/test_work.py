"""``conveyor work`` from the shell: --once, --stop-when-empty, --tries, and bad arguments."""

from __future__ import annotations

import pytest

from .conftest import Project


def test_once_processes_exactly_one_job(workspace: Project) -> None:
    for tag in ("a", "b", "c"):
        workspace.enqueue("Ok", tag=tag)
    result = workspace.run("work", "--once")
    assert result.returncode == 0, result.stderr
    assert workspace.ran() == ["ok a"]
    assert workspace.driver.size("default").pending == 2
    assert result.stderr.count("COMPLETED") == 1


def test_stop_when_empty_drains_the_queues_and_exits_0(workspace: Project) -> None:
    for tag in ("a", "b", "c"):
        workspace.enqueue("Ok", tag=tag)
    workspace.enqueue("Ok", tag="urgent", queue="high")
    result = workspace.run("work", "--queue", "high,default", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert workspace.ran() == ["ok urgent", "ok a", "ok b", "ok c"]
    assert workspace.driver.size("default").total == 0
    assert "queue empty" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--spin", "0"],
        ["--spin", "0.01"],
        ["--spin", "0.01", "--concurrency", "1"],
        ["--prefetch", "0"],
        ["--prefetch", "3"],
        ["--prefetch", "3", "--concurrency", "1"],
    ],
    ids=[
        "no-spin", "long-spin", "long-spin-serial", "no-prefetch", "three-ahead",
        "three-ahead-serial",
    ],
)  # fmt: skip
def test_spin_and_prefetch_change_nothing_but_speed(workspace: Project, args: list[str]) -> None:
    tags = [f"t{i}" for i in range(12)]
    for tag in tags:
        workspace.enqueue("Ok", tag=tag)
    result = workspace.run("work", "--stop-when-empty", *args)
    assert result.returncode == 0, result.stderr
    assert workspace.ran() == [f"ok {tag}" for tag in tags]
    assert workspace.driver.size("default").total == 0
    assert result.stderr.count("attempt=1 COMPLETED") == len(tags)


def test_stop_when_empty_on_an_empty_queue_exits_at_once(workspace: Project) -> None:
    result = workspace.run("work", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert workspace.ran() == []


def test_tries_and_backoff_from_the_command_line(workspace: Project) -> None:
    job_id = workspace.enqueue("Boom")
    result = workspace.run("work", "--tries", "3", "--backoff", "0", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("RELEASED") == 2
    assert result.stderr.count("FAILED") == 1
    record = workspace.driver.failed.get(job_id)
    assert record is not None and "RuntimeError: exploded on purpose" in record.exception


def test_a_job_the_worker_cannot_import_is_failed_with_the_reason(workspace: Project) -> None:
    job_id = workspace.enqueue("Missing")
    result = workspace.run("work", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    record = workspace.driver.failed.get(job_id)
    assert record is not None and "unknown job 'clijobs:Missing'" in record.exception


def test_app_modules_from_the_command_line(workspace: Project) -> None:
    (workspace.root / "conveyor.toml").write_text("")
    job_id = workspace.enqueue("Ok", tag="via-flag")
    result = workspace.run("--app", "clijobs", "work", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert workspace.ran() == ["ok via-flag"]
    assert workspace.driver.failed.get(job_id) is None


def test_app_modules_after_the_command_name(workspace: Project) -> None:
    (workspace.root / "conveyor.toml").write_text("")
    workspace.enqueue("Ok", tag="after")
    result = workspace.run("work", "--app", "clijobs", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert workspace.ran() == ["ok after"]


def test_app_modules_before_and_after_the_command_name_add_up(workspace: Project) -> None:
    result = workspace.run("--app", "first", "config", "--app", "second,third", "--app", "fourth")
    assert result.returncode == 0, result.stderr
    assert "app:         clijobs, first, second, third, fourth" in result.stdout


@pytest.mark.parametrize(
    "command",
    [["status"], ["failed"], ["retry", "all"], ["forget", "1"], ["flush"], ["batches"],
     ["batches", "show", "nope00"], ["clear", "--force"], ["restart"], ["migrate"]],
    ids=lambda c: "-".join(c),
)  # fmt: skip
def test_every_command_takes_app_after_its_name(workspace: Project, command: list[str]) -> None:
    result = workspace.run(*command, "--app", "clijobs")
    assert "No such option" not in result.stderr
    assert result.returncode in (0, 1), result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["work", "--backoff", "x"], "--backoff"),
        (["work", "--backoff", "3,-1"], "--backoff"),
        (["work", "--tries", "-1"], "Invalid value for '--tries'"),
        (["work", "--timeout", "soon"], "Invalid value for '--timeout'"),
        (["work", "--queue", ","], "--queue"),
        (["work", "--concurrency", "0"], "Invalid value for '--concurrency'"),
        (["work", "--spin", "1"], "Invalid value for '--spin'"),
        (["work", "--spin", "-0.001"], "Invalid value for '--spin'"),
        (["work", "--prefetch", "-1"], "Invalid value for '--prefetch'"),
        (["work", "--prefetch", "many"], "Invalid value for '--prefetch'"),
        (["work", "--sleep", "nan"], "Invalid value for '--sleep'"),
        (["work", "--sleep", "inf"], "Invalid value for '--sleep'"),
        (["work", "--timeout", "nan"], "Invalid value for '--timeout'"),
        (["work", "--timeout", "-1"], "Invalid value for '--timeout'"),
        (["work", "--memory", "nan"], "Invalid value for '--memory'"),
        (["work", "--max-time", "inf"], "Invalid value for '--max-time'"),
        (["work", "--max-jobs", "-1"], "Invalid value for '--max-jobs'"),
        (["work", "--max-jobs", "nan"], "Invalid value for '--max-jobs'"),
        (["work", "--lease", "nan"], "Invalid value for '--lease'"),
        (["work", "--prefetch-hold", "nan"], "Invalid value for '--prefetch-hold'"),
        (["work", "--spin", "nan"], "Invalid value for '--spin'"),
        (["work", "--backoff", "3,nan"], "--backoff"),
        (["work", "--backoff", "inf"], "--backoff"),
        (["flush", "--hours", "nan"], "Invalid value for '--hours'"),
        (["work", "--stop-when-empty", "--queue", "x" * 200], "at most 80 characters"),
        (["work", "--stop-when-empty", "--queue", "high, bad\x1bname"], "'\\x1b'"),
        (["status", "--queue", "default," + "x" * 81], "at most 80 characters"),
        (["clear", "--force", "--queue", ""], "cannot be empty"),
        (["failed", "--queue", "x" * 81], "at most 80 characters"),
        (["retry", "all", "--queue", " padded"], "whitespace"),
        (["batches", "prune", "--unfinished", "nan"], "Invalid value for '--unfinished'"),
        (["work", "nope"], "unknown connection 'nope'"),
        (["status", "nope"], "unknown connection 'nope'"),
        (
            ["--app", "no_such_module_here", "work"],
            "cannot import app module 'no_such_module_here'",
        ),
        (["work", "--no-such-option"], "No such option '--no-such-option'"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    workspace: Project, args: list[str], says: str
) -> None:
    result = workspace.run(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert workspace.ran() == []


@pytest.mark.parametrize(
    ("filename", "text", "key"),
    [
        ("conveyor.toml", "[connections.database]\nurl = 'sqlite:///q.db'\nretry_afterr = 5\n",
         "retry_afterr"),
        ("conveyor.toml", "default = 'nowhere'\n", "'nowhere'"),
        ("conveyor.toml", "max_payload = 'lots'\n", "max_payload"),
        ("conveyor.toml", "max_payload = -1\n", "max_payload"),
        ("conveyor.toml", "max_payload = 1.5\n", "max_payload"),
        ("conveyor.toml", "[connections.database]\nurl = 'sqlite:///q.db'\nretry_after = nan\n",
         "connections.database.retry_after"),
        ("conveyor.toml", "[connections.database]\nurl = 'sqlite:///q.db'\nretry_after = inf\n",
         "connections.database.retry_after"),
        ("pyproject.toml", "[tool.conveyor]\n[tool.conveyor.connections.database]\nurl = 'amqp://x'\n",
         "connections.database.url"),
    ],
)  # fmt: skip
def test_a_bad_config_file_is_one_line_naming_key_and_file(
    workspace: Project, filename: str, text: str, key: str
) -> None:
    (workspace.root / "conveyor.toml").unlink()
    path = workspace.root / filename
    path.write_text(text)
    command = ["work", "--once"] if filename == "pyproject.toml" or "nan" in text else ["status"]
    result = workspace.run(*command)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0] and str(path) in lines[0]


def test_a_bad_environment_variable_is_named(workspace: Project) -> None:
    result = workspace.run("status", env={"CONVEYOR_CONNECTION": "nowhere"})
    assert result.returncode == 2
    assert "CONVEYOR_CONNECTION names unknown connection 'nowhere'" in result.stderr


def test_a_connection_named_max_and_conveyor_max_payload_work_together(
    workspace: Project,
) -> None:
    (workspace.root / "conveyor.toml").write_text(
        "app = ['clijobs']\ndefault = 'max'\n[connections.max]\nurl = 'sqlite:///max.db'\n"
    )
    result = workspace.run("config", env={"CONVEYOR_MAX_PAYLOAD": "4096"})
    assert result.returncode == 0, result.stderr
    assert "max_payload: 4096" in result.stdout


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CONVEYOR_DATABASE_RETRY_AFTER": "nan"}, "CONVEYOR_DATABASE_RETRY_AFTER"),
        ({"CONVEYOR_MAX_PAYLOAD": "-1"}, "CONVEYOR_MAX_PAYLOAD"),
    ],
)
def test_a_bad_number_in_the_environment_exits_2_naming_it(
    workspace: Project, env: dict[str, str], named: str
) -> None:
    result = workspace.run("work", "--once", env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr


def test_stop_when_empty_says_how_many_delayed_jobs_it_leaves(workspace: Project) -> None:
    workspace.enqueue("Ok", tag="now")
    workspace.enqueue("Ok", tag="later", delay=600)
    workspace.enqueue("Ok", tag="urgent-later", queue="high", delay=600)
    result = workspace.run("work", "--queue", "high,default", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert workspace.ran() == ["ok now"]
    lines = [ln for ln in result.stderr.splitlines() if "delayed job(s)" in ln]
    assert len(lines) == 1, result.stderr
    assert "2 delayed job(s) not yet due are left (1 on high, 1 on default)" in lines[0]
    assert "without --stop-when-empty" in lines[0]


def test_stop_when_empty_with_nothing_delayed_says_nothing_of_it(workspace: Project) -> None:
    workspace.enqueue("Ok", tag="now")
    result = workspace.run("work", "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert "delayed" not in result.stderr


@pytest.mark.parametrize("option", [(), ("--quiet",), ("--log-level", "warning")])
def test_a_quiet_worker_logs_no_line_per_job(workspace: Project, option: tuple[str, ...]) -> None:
    workspace.enqueue("Ok", tag="a")
    result = workspace.run("work", "--stop-when-empty", *option)
    assert result.returncode == 0, result.stderr
    assert workspace.ran() == ["ok a"]
    assert ("COMPLETED" in result.stderr) is (option == ())
