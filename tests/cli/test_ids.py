"""Ids as a user types them: ``failed show``, and unique prefixes for the commands taking one."""

from __future__ import annotations

import time

import pytest

from conveyor.bus.batch_store import BatchRecord
from conveyor.bus.stores import store_for
from conveyor.drivers.base import FailedRecord
from conveyor.envelope import Envelope, encode

from .conftest import Project

A, B = "abcdef01" + "0" * 24, "abcdef02" + "0" * 24


def _failed(workspace: Project, uuid: str, error: str = "RuntimeError: boom") -> FailedRecord:
    env = Envelope(id=uuid, job="clijobs:Boom", args={}, queue="default")
    trace = f'Traceback (most recent call last):\n  File "clijobs.py", line 9\n{error}'
    workspace.driver.failed.record(
        FailedRecord(uuid, "database", "default", encode(env), trace, time.time())
    )
    stored = workspace.driver.failed.get(uuid)
    assert stored is not None
    return stored


def _batch(workspace: Project, batch_id: str, name: str) -> None:
    record = BatchRecord(batch_id, name, 3, 3, 0, False, {}, time.time())
    assert store_for(workspace.driver).create(record, [])


def test_failed_show_prints_the_fields_and_the_whole_traceback(workspace: Project) -> None:
    record = _failed(workspace, A, error="ValueError: bad \x1b]0;owned\x07 input")
    result = workspace.run("failed", "show", str(record.id))
    assert result.returncode == 0, result.stderr
    assert f"uuid:       {A}" in result.stdout
    assert "queue:      default" in result.stdout
    assert "job:        clijobs:Boom" in result.stdout
    assert 'Traceback (most recent call last):\n  File "clijobs.py", line 9\n' in result.stdout
    assert "ValueError: bad \ufffd]0;owned\ufffd input" in result.stdout
    assert "\x1b" not in result.stdout


@pytest.mark.parametrize("given", [A, A[:6], A[:8]])
def test_failed_show_by_uuid_or_its_unique_start(workspace: Project, given: str) -> None:
    _failed(workspace, A)
    _failed(workspace, "ffffff" + A[6:])
    result = workspace.run("failed", "show", given)
    assert result.returncode == 0, result.stderr
    assert f"uuid:       {A}" in result.stdout


def test_a_prefix_two_uuids_share_is_one_line_naming_both_and_exit_2(workspace: Project) -> None:
    _failed(workspace, A)
    _failed(workspace, B)
    for command in (["failed", "show"], ["retry"], ["forget"]):
        result = workspace.run(*command, "abcdef0")
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert "abcdef0 is the start of 2 failed job ids" in result.stderr
        assert A in result.stderr and B in result.stderr
    assert workspace.driver.failed.count() == 2, "nothing was retried or forgotten"


@pytest.mark.parametrize("given", ["abcde", "abcdef9", "99"])
def test_no_match_or_a_prefix_under_6_characters_is_not_found(
    workspace: Project, given: str
) -> None:
    _failed(workspace, A)
    result = workspace.run("failed", "show", given)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"no failed job with id {given}" in result.stderr


def test_retry_and_forget_take_a_unique_prefix(workspace: Project) -> None:
    _failed(workspace, A)
    _failed(workspace, B)
    retried = workspace.run("retry", A[:8])
    assert retried.returncode == 0, retried.stderr
    assert workspace.driver.size("default").pending == 1
    forgot = workspace.run("forget", B[:8])
    assert forgot.returncode == 0, forgot.stderr
    assert workspace.driver.failed.count() == 0


def test_retry_of_several_does_nothing_if_one_is_missing(workspace: Project) -> None:
    _failed(workspace, A)
    result = workspace.run("retry", A[:8], "nosuch")
    assert result.returncode == 1
    assert "no failed job with id nosuch" in result.stderr
    assert workspace.driver.size("default").pending == 0


def test_batches_show_takes_a_unique_prefix(workspace: Project) -> None:
    _batch(workspace, A, "imports")
    _batch(workspace, B, "exports")
    result = workspace.run("batches", "show", B[:8])
    assert result.returncode == 0, result.stderr
    assert f"Batch {B} 'exports'" in result.stdout
    ambiguous = workspace.run("batches", "show", "abcdef0")
    assert ambiguous.returncode == 2
    assert "abcdef0 is the start of 2 batch ids" in ambiguous.stderr
    assert workspace.run("batches", "show", "abcdef9").returncode == 1
    assert workspace.run("batches", "cancel", A[:6] + "01").returncode == 0
