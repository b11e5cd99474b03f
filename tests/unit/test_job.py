"""Jobs declare: typed keyword-only fields, class-level policy, and nothing else at import."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from conveyor import Conveyor, ConveyorError, Job, dispatch_sync, job
from conveyor.worker.outcome import Kind

CALLS: list[tuple[str, Any]] = []


class SendWelcomeEmail(Job):
    user_id: int
    greeting: str = "Hello"

    queue = "emails"
    tries = 3
    backoff = [10, 30]

    def handle(self) -> None:
        CALLS.append(("email", self.user_id))


class Renamed(Job):
    job_name = "billing.charge"

    def handle(self) -> None:
        pass


@job
def plain(n: int, label: str = "x") -> None:
    CALLS.append(("plain", (n, label)))


@job(queue="crm", tries=5, timeout=9.0, backoff=[1, 2], max_exceptions=2, fail_on_timeout=True)
async def sync_crm(user_id: int) -> None:
    CALLS.append(("crm", user_id))


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    CALLS.clear()


def test_annotated_attributes_become_keyword_only_dataclass_fields() -> None:
    names = [f.name for f in dataclasses.fields(SendWelcomeEmail)]  # type: ignore[arg-type]
    assert names == ["user_id", "greeting"]
    assert SendWelcomeEmail(user_id=1) == SendWelcomeEmail(user_id=1, greeting="Hello")
    with pytest.raises(TypeError):
        SendWelcomeEmail(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        SendWelcomeEmail()  # type: ignore[call-arg]


def test_policy_attributes_stay_on_the_class_and_are_not_fields() -> None:
    job_ = SendWelcomeEmail(user_id=1)
    assert (job_.queue, job_.tries, job_.backoff) == ("emails", 3, [10, 30])
    assert "tries" not in {f.name for f in dataclasses.fields(job_)}  # type: ignore[arg-type]


def test_job_name_is_module_and_qualname_unless_set() -> None:
    assert SendWelcomeEmail.job_name == f"{__name__}:SendWelcomeEmail"
    assert Renamed.job_name == "billing.charge"


@pytest.mark.parametrize("name", ["queue", "tries", "attempts", "job_id", "handle", "backoff"])
def test_reserved_field_names_are_rejected(name: str) -> None:
    with pytest.raises(ConveyorError) as info:
        type("Clash", (Job,), {"__annotations__": {name: int}, "__module__": __name__})
    assert name in str(info.value) and "reserved" in str(info.value)


def test_outside_a_worker_the_context_calls_say_so() -> None:
    job_ = SendWelcomeEmail(user_id=1)
    assert job_.attempts() == 0
    assert job_.job_id is None
    for call in (job_.release, job_.delete, job_.fail):
        with pytest.raises(ConveyorError, match="not running inside a worker"):
            call()


def test_handle_must_be_defined() -> None:
    class NoHandle(Job):
        pass

    with pytest.raises(NotImplementedError, match="NoHandle must define handle"):
        NoHandle().handle()


def test_job_decorator_turns_a_function_into_a_job_class() -> None:
    assert isinstance(plain, type) and issubclass(plain, Job)
    assert plain.job_name == f"{__name__}:plain"
    assert [f.name for f in dataclasses.fields(plain)] == ["n", "label"]  # type: ignore[arg-type]
    plain(n=2).handle()
    assert CALLS == [("plain", (2, "x"))]


def test_job_decorator_carries_policy_options() -> None:
    assert sync_crm.queue == "crm"
    assert (sync_crm.tries, sync_crm.timeout, sync_crm.backoff) == (5, 9.0, [1, 2])
    assert (sync_crm.max_exceptions, sync_crm.fail_on_timeout) == (2, True)


def test_async_function_job_runs_through_the_executor(app: Conveyor) -> None:
    outcome = dispatch_sync(sync_crm(user_id=4))
    assert outcome.kind is Kind.COMPLETED
    assert CALLS == [("crm", 4)]


def test_sync_function_job_runs_through_the_executor(app: Conveyor) -> None:
    assert dispatch_sync(plain(n=1, label="y")).kind is Kind.COMPLETED
    assert CALLS == [("plain", (1, "y"))]


def test_unknown_decorator_option_is_rejected_naming_it() -> None:
    with pytest.raises(ConveyorError) as info:
        job(retries=3)
    assert "retries" in str(info.value)


def test_var_args_cannot_be_fields() -> None:
    def spread(*items: int) -> None:
        pass

    with pytest.raises(ConveyorError, match=r"\*args"):
        job(spread)


def test_reserved_parameter_name_is_rejected() -> None:
    def bad(queue: str) -> None:
        pass

    with pytest.raises(ConveyorError, match="reserved"):
        job(bad)
