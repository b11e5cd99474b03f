"""Text from the queue reaches the terminal inert: no escape sequence, markup shown as written.

Queue names, job names and exception texts are written by whoever dispatches; a worker's
operator reads them. Each test stores hostile text through the real driver and runs the real
console script on it.
"""

from __future__ import annotations

import time

from conveyor.drivers.base import FailedRecord, Message
from conveyor.envelope import Envelope, encode, new_job_id

from .conftest import Project

#: retitles the terminal, clears the screen, prints an OSC-8 link, reverses the line (U+202E),
#: and a C1 control sequence introducer (U+009B)
HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2J\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"
    "\u202eevil\u2066\x9b31m\r"
)
CONTROL = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\r")


def assert_inert(text: str) -> None:
    for char in CONTROL:
        assert char not in text, f"{char!r} reached the terminal:\n{text!r}"


def store(workspace: Project, queue: str, job: str) -> None:
    env = Envelope(id=new_job_id(), job=job, args={}, queue=queue)
    workspace.driver.push(Message(env.id, queue, encode(env), 0.0))


def test_status_prints_a_queue_named_like_markup_and_one_full_of_escapes(
    workspace: Project,
) -> None:
    store(workspace, "[/]", "clijobs:Ok")
    store(workspace, "[bold]x[/bold]", "clijobs:Ok")
    store(workspace, f"q{HOSTILE}", "clijobs:Ok")
    result = workspace.run("status")
    assert result.returncode == 0, result.stderr
    assert_inert(result.stdout + result.stderr)
    assert "│ [/]" in result.stdout
    assert "[bold]x[/bold]" in result.stdout
    assert "\ufffd]0;pwned" in result.stdout


def test_failed_table_shows_job_names_queues_and_errors_inert(workspace: Project) -> None:
    env = Envelope(id=new_job_id(), job=f"clijobs:[red]Job{HOSTILE}", args={}, queue="q")
    trace = f"Traceback (most recent call last):\nRuntimeError: [/]{HOSTILE}"
    record = FailedRecord(env.id, "database", f"[/]{HOSTILE}", encode(env), trace, time.time())
    workspace.driver.failed.record(record)
    result = workspace.run("failed")
    assert result.returncode == 0, result.stderr
    assert_inert(result.stdout + result.stderr)
    assert "[red]Job" in result.stdout
    assert "RuntimeError:" in result.stdout and result.stdout.count("[/]") == 2
    listed = workspace.run("failed", "--json")
    assert listed.returncode == 0, listed.stderr
    assert_inert(listed.stdout)
    stored = workspace.driver.failed.get(env.id)
    assert stored is not None
    retried = workspace.run("retry", str(stored.id))
    assert retried.returncode == 0, retried.stderr
    assert_inert(retried.stdout + retried.stderr)
    assert "[red]Job" in retried.stdout


def test_worker_log_lines_show_a_hostile_job_name_inert(workspace: Project) -> None:
    store(workspace, "default", f"clijobs:Nope{HOSTILE}")
    result = workspace.run("work", "--once", "--in-process", "--sleep", "0.1")
    assert result.returncode == 0, result.stderr
    assert "clijobs:Nope\\x1b]0;pwned" in result.stderr  # the worker's line escapes it
    assert_inert(result.stdout + result.stderr)


def test_an_error_message_naming_stored_text_is_inert(workspace: Project) -> None:
    result = workspace.run("batches", "show", f"[/]{HOSTILE}")
    assert result.returncode == 1
    assert_inert(result.stdout + result.stderr)
    assert "no batch with id [/]" in result.stderr
