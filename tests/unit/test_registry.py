"""A job name becomes code only through the registry, only for Job subclasses the app defined,
and nothing is imported on a payload's say-so."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Job, UnknownJobError
from conveyor.bus.callbacks import RunCallback
from conveyor.bus.links import RUN_CALLBACK_JOB
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


def test_an_allowed_package_is_never_imported_on_a_payloads_say_so(package: str) -> None:
    with pytest.raises(UnknownJobError):
        Registry([package]).resolve(f"{package}.jobs:Ping")
    assert f"{package}.jobs" not in sys.modules


def test_a_job_of_a_module_below_an_app_module_resolves_once_the_app_loaded_it(
    package: str,
) -> None:
    importlib.import_module(f"{package}.jobs")  # what the worker's import of its app does
    cls = Registry([package]).resolve(f"{package}.jobs:Ping")
    assert issubclass(cls, Job) and cls.__name__ == "Ping"


def test_allow_adds_a_module_later(package: str) -> None:
    importlib.import_module(f"{package}.jobs")
    registry = Registry(["elsewhere"])
    with pytest.raises(UnknownJobError):
        registry.resolve(f"{package}.jobs:Ping")
    registry.allow(f"{package}.jobs")
    assert registry.resolve(f"{package}.jobs:Ping").__name__ == "Ping"


def test_a_loaded_job_class_outside_the_app_modules_does_not_resolve() -> None:
    with pytest.raises(UnknownJobError):
        Registry(["myapp"]).resolve(Local.job_name)


def test_conveyors_own_jobs_resolve_beside_the_app_modules() -> None:
    assert Registry(["myapp"]).resolve(RUN_CALLBACK_JOB) is RunCallback


def test_an_allowed_name_is_not_a_prefix_match(package: str) -> None:
    with pytest.raises(UnknownJobError):
        Registry([package]).resolve(f"{package}evil:Anything")
    assert f"{package}evil" not in sys.modules


def test_only_job_subclasses_resolve_even_from_allowed_modules() -> None:
    registry = Registry(["os", "tests.unit.test_registry"])
    for name in ("os:system", "tests.unit.test_registry:Registry", "builtins:eval"):
        with pytest.raises(UnknownJobError):
            registry.resolve(name)


def test_explicit_registration_under_another_name() -> None:
    registry = Registry()
    registry.register(Local, "legacy.Name")
    assert registry.resolve("legacy.Name") is Local
