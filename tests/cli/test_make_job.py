"""``conveyor make-job``: a job file a user can import and fill in."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import Project


def test_make_job_writes_an_importable_job(workspace: Project) -> None:
    result = workspace.run("make-job", "SendWelcomeEmail")
    assert result.returncode == 0, result.stderr
    target = workspace.root / "jobs" / "send_welcome_email.py"
    assert target.is_file() and (workspace.root / "jobs" / "__init__.py").is_file()
    assert "jobs/send_welcome_email.py" in result.stdout
    assert "conveyor --app jobs.send_welcome_email work" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c",
         "from jobs.send_welcome_email import SendWelcomeEmail as J;"
         "from conveyor import Job; assert issubclass(J, Job);"
         "j = J(user_id=1); print(J.job_name, J.tries, j.user_id)"],
        cwd=workspace.root, env=workspace.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["jobs.send_welcome_email:SendWelcomeEmail", "3", "1"]


def test_make_job_refuses_to_overwrite_without_force(workspace: Project) -> None:
    assert workspace.run("make-job", "Ping").returncode == 0
    target = workspace.root / "jobs" / "ping.py"
    target.write_text("# edited by hand\n")
    again = workspace.run("make-job", "Ping")
    assert again.returncode == 2
    assert "exists; use --force" in again.stderr
    assert target.read_text() == "# edited by hand\n"
    assert workspace.run("make-job", "Ping", "--force").returncode == 0
    assert "class Ping(Job)" in target.read_text()


def test_make_job_into_another_folder(workspace: Project) -> None:
    result = workspace.run("make-job", "ChargeCard", "--dir", "billing")
    assert result.returncode == 0, result.stderr
    assert (workspace.root / "billing" / "charge_card.py").is_file()


@pytest.mark.parametrize("name", ["send_welcome_email", "1Job", "Send-Email", "send"])
def test_make_job_with_a_bad_name_exits_2(workspace: Project, name: str) -> None:
    result = workspace.run("make-job", name)
    assert result.returncode == 2
    assert "CapitalizedName" in result.stderr
    assert not (workspace.root / "jobs").exists()


def test_the_command_make_job_prints_runs_the_job_from_the_project_folder(
    workspace: Project,
) -> None:
    made = workspace.run("make-job", "SendWelcomeEmail")
    assert made.returncode == 0, made.stderr
    printed = made.stdout.split("Point workers at it: ", 1)[1].split()
    assert printed == ["conveyor", "--app", "jobs.send_welcome_email", "work"]
    target = workspace.root / "jobs" / "send_welcome_email.py"
    body = 'Path("welcome.log").write_text(f"welcomed {self.user_id}")'
    target.write_text(
        target.read_text()
        .replace("raise NotImplementedError", body)
        .replace("from conveyor import Job", "from pathlib import Path\n\nfrom conveyor import Job")
    )
    dispatched = subprocess.run(
        [sys.executable, "-c",
         "from jobs.send_welcome_email import SendWelcomeEmail as J; J(user_id=7).dispatch()"],
        cwd=workspace.root, env=workspace.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert dispatched.returncode == 0, dispatched.stderr
    result = workspace.run(*printed[1:], "--stop-when-empty")
    assert result.returncode == 0, result.stderr
    assert "COMPLETED" in result.stderr
    assert (workspace.root / "welcome.log").read_text() == "welcomed 7"
    assert workspace.driver.failed.count() == 0
