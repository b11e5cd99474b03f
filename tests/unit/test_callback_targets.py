"""A callback named in a payload runs only if an app module defines it: nothing else is called,
nothing is imported, and the walk of a dotted name never leaves the module."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from conveyor import Conveyor
from conveyor.bus.callbacks import runnable
from conveyor.bus.links import RUN_CALLBACK_JOB
from conveyor.envelope import Envelope, encode
from conveyor.errors import ConveyorError
from conveyor.worker.executor import Attempt
from conveyor.worker.outcome import Kind

CALLS: list[str] = []


def on_done(batch: Any) -> None:
    CALLS.append("on_done")


class Hooks:
    @staticmethod
    def on_failure(failure: Any) -> None:
        CALLS.append("on_failure")


@pytest.fixture
def trusting(app: Conveyor) -> Conveyor:
    """The app lists this module, as ``--app tests.unit.test_callback_targets`` would."""
    app.registry.allow(__name__)
    return app


def test_a_function_and_a_static_method_of_an_app_module_run(trusting: Conveyor) -> None:
    assert runnable(f"{__name__}:on_done") is on_done
    assert runnable(f"{__name__}:Hooks.on_failure") is Hooks.on_failure


@pytest.mark.parametrize(
    "target",
    [
        "click:echo",  # a loaded package's function
        "rich:print",
        "click:utils.os.makedirs",  # a walk from a package into the standard library
        "__main__:main",
        "os:system",
        "builtins:eval",
        "conveyor.bus.callbacks:runnable",
        f"{__name__}:sys.exit",  # an app module's import is not its function
        f"{__name__}:sys.modules.clear",
        f"{__name__}:pytest.fail",
        f"{__name__}:Conveyor",  # a class, not a function
        f"{__name__}:Hooks",
        f"{__name__}:",
        f"{__name__}:on_done.__globals__",
        f"{__name__}:missing",
    ],
)
def test_anything_else_a_payload_names_is_refused(trusting: Conveyor, target: str) -> None:
    with pytest.raises(ConveyorError):
        runnable(target)


def test_a_listed_module_not_loaded_is_not_imported(trusting: Conveyor) -> None:
    trusting.registry.allow("tests.unit.never_imported_callbacks")
    with pytest.raises(ConveyorError):
        runnable("tests.unit.never_imported_callbacks:main")
    assert "tests.unit.never_imported_callbacks" not in sys.modules


def test_without_app_modules_no_function_is_trusted(app: Conveyor) -> None:
    with pytest.raises(ConveyorError, match="--app"):
        runnable(f"{__name__}:on_done")


def test_a_forged_callback_job_fails_with_the_reason_and_calls_nothing(
    trusting: Conveyor, capsys: pytest.CaptureFixture[str]
) -> None:
    CALLS.clear()
    env = Envelope(
        id="forged", job=RUN_CALLBACK_JOB, args={"target": "click:echo", "event": "chain_catch"}
    )
    attempt = Attempt("forged", "default", "database", encode(env), 1)
    outcome = trusting.executor().execute(attempt)
    assert outcome.kind is Kind.FAILED
    assert "click:echo" in outcome.reason and "app modules" in outcome.reason
    assert capsys.readouterr().out == ""
    assert CALLS == []
