"""Every command's ``--help`` says what it does and shows an example."""

from __future__ import annotations

import pytest

from .conftest import Project

COMMANDS = [
    "work", "failed", "retry", "forget", "flush", "clear", "status", "restart", "migrate",
    "config", "make-job",
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help_says_what_the_command_does_with_an_example(workspace: Project, command: str) -> None:
    result = workspace.run(command, "--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"Usage: conveyor {command}")
    summary = out.split("\n\n")[1].strip()
    assert len(summary) > 20, f"no description in: {out}"
    assert "Example" in out
    assert f"  conveyor {command}" in out or f"conveyor {command} " in out


def test_top_level_help_lists_every_command(workspace: Project) -> None:
    result = workspace.run("--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"  {command} " in result.stdout


def test_short_help_flag_and_version(workspace: Project) -> None:
    assert workspace.run("status", "-h").stdout.startswith("Usage: conveyor status")
    version = workspace.run("--version")
    assert version.returncode == 0 and "version" in version.stdout


def test_unknown_command_is_a_usage_error(workspace: Project) -> None:
    result = workspace.run("wrok")
    assert result.returncode == 2
    assert "No such command 'wrok'" in result.stderr
