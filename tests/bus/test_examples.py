"""The two examples of the chapter, end to end: real workers, a real local SMTP server."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from conveyor import current_app, set_app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.slow


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}_run", EXAMPLES / name / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _isolated(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in ("SMTP_HOST", "SMTP_PORT", "NEWSLETTER_DB", "IMPORT_DB"):
        monkeypatch.setenv(key, "")  # the examples set these; restored after the test
    previous = set_app(None)
    try:
        yield
    finally:
        set_app(previous)


def test_newsletter(project: Path) -> None:
    result = _load("newsletter").run(project)
    assert result.status == {
        "progress": 87, "total_jobs": 8, "pending_jobs": 1, "failed_jobs": 1, "finished": True,
    }  # fmt: skip
    received = sorted(m["To"] for m in result.mailbox.messages)
    assert received == sorted(
        f"{n}@example.com" for n in ("ada", "grace", "linus", "barbara", "ken", "dennis")
    )
    users = {u["email"]: u for u in result.users}
    assert users["nobody@bounces.test"]["email_bounced"] == 1  # failed() marked it
    assert users["late@example.com"]["newsletters_sent"] == 0  # deleted from the batch
    assert users["ada@example.com"]["newsletters_sent"] == 1
    kinds = [kind for kind, _ in result.events]
    assert sorted(kinds) == ["catch", "finally"]  # then: only if every mail went out
    assert "nobody@bounces.test" in dict(result.events)["catch"]
    assert current_app().driver().failed.count() == 1


def test_csv_import(project: Path) -> None:
    result = _load("csv_import").run(project)
    body = result.summary.get_payload()
    assert "3 created, 1 updated, 2 failed." in body
    assert "line 4: invalid email 'not-an-email'" in body
    assert "line 6: the name is empty" in body
    users = {u["email"]: u["name"] for u in result.users}
    assert users["grace@example.com"] == "Grace Hopper"  # updated by email
    assert set(users) == {f"{n}@example.com" for n in ("ada", "grace", "linus", "ken")}
