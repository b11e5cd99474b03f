"""A job name becomes code only through the registry, and only for Job subclasses."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Job, UnknownJobError
from conveyor.registry import Registry


class Local(Job):
    def handle(self) -> None:
        pass


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh importable package ``pkg_<hex>`` with a ``jobs`` module defining ``Ping``."""
    name = f"pkg_{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "jobs.py").write_text(
        "from conveyor import Job\n\nclass Ping(Job):\n    def handle(self):\n        pass\n"
    )
    (tmp_path / f"{name}evil.py").write_text("raise SystemExit('must never be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for mod in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[mod]


def test_a_loaded_job_class_resolves_by_name() -> None:
    assert Registry().resolve(Local.job_name) is Local


def test_unknown_job_names_the_job_and_the_fix() -> None:
    with pytest.raises(UnknownJobError) as info:
        Registry().resolve("nowhere.jobs:Missing")
    assert "'nowhere.jobs:Missing'" in str(info.value) and "--app" in str(info.value)


def test_modules_are_not_imported_unless_allowed(package: str) -> None:
    with pytest.raises(UnknownJobError):
        Registry().resolve(f"{package}.jobs:Ping")
    assert f"{package}.jobs" not in sys.modules


def test_an_allowed_package_lets_its_modules_be_imported(package: str) -> None:
    cls = Registry([package]).resolve(f"{package}.jobs:Ping")
    assert issubclass(cls, Job) and cls.__name__ == "Ping"
    assert f"{package}.jobs" in sys.modules


def test_allow_adds_a_module_later(package: str) -> None:
    registry = Registry()
    registry.allow(f"{package}.jobs")
    assert registry.resolve(f"{package}.jobs:Ping").__name__ == "Ping"


def test_an_allowed_name_is_not_a_prefix_match(package: str) -> None:
    with pytest.raises(UnknownJobError):
        Registry([package]).resolve(f"{package}evil:Anything")
    assert f"{package}evil" not in sys.modules


def test_only_job_subclasses_resolve_even_from_allowed_modules() -> None:
    registry = Registry(["os", "tests.unit.test_registry"])
    for name in ("os:system", "tests.unit.test_registry:Registry", "builtins:eval"):
        with pytest.raises(UnknownJobError):
            registry.resolve(name)


def test_an_allowed_module_that_fails_to_import_is_an_unknown_job(package: str) -> None:
    with pytest.raises(UnknownJobError, match="cannot import"):
        Registry([package]).resolve(f"{package}.missing:Ping")


def test_explicit_registration_under_another_name() -> None:
    registry = Registry()
    registry.register(Local, "legacy.Name")
    assert registry.resolve("legacy.Name") is Local
