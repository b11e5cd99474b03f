"""The retry policy decides release-or-fail from numbers alone, so it is tested with numbers."""

from __future__ import annotations

import pytest

from conveyor.retry import Policy, after_error, exhausted_before_start

NOW = 1_000_000.0


def policy(**overrides: object) -> Policy:
    base: dict[str, object] = {
        "tries": 3, "backoff": None, "retry_until": None, "max_exceptions": None,
        "fail_on_timeout": False, "timeout": None,
    }  # fmt: skip
    base.update(overrides)
    return Policy(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("attempt", [1, 2])
def test_an_error_before_the_last_try_releases(attempt: int) -> None:
    decision = after_error(policy(tries=3), attempt, attempt, NOW)
    assert decision.retry
    assert decision.delay == 0.0


def test_an_error_on_the_last_try_fails_and_says_which_attempt() -> None:
    decision = after_error(policy(tries=3), 3, 3, NOW)
    assert not decision.retry
    assert decision.reason == "attempt 3 of 3 failed"


def test_tries_one_fails_on_the_first_error() -> None:
    assert not after_error(policy(tries=1), 1, 1, NOW).retry


def test_tries_zero_means_unlimited() -> None:
    assert after_error(policy(tries=0), 10_000, 10_000, NOW).retry
    assert exhausted_before_start(policy(tries=0), 10_000, NOW) is None


def test_retry_until_replaces_tries_while_it_is_in_the_future() -> None:
    p = policy(tries=1, retry_until=NOW + 60)
    assert after_error(p, 50, 50, NOW).retry
    assert exhausted_before_start(p, 50, NOW) is None


def test_retry_until_in_the_past_fails() -> None:
    p = policy(tries=10, retry_until=NOW - 1)
    decision = after_error(p, 1, 1, NOW)
    assert not decision.retry
    assert "retry_until" in decision.reason
    assert exhausted_before_start(p, 1, NOW) == "retry_until has passed"


def test_max_exceptions_fails_even_with_unlimited_tries() -> None:
    p = policy(tries=0, max_exceptions=2)
    assert after_error(p, 5, 1, NOW).retry
    decision = after_error(p, 6, 2, NOW)
    assert not decision.retry
    assert "max_exceptions=2" in decision.reason


def test_max_exceptions_wins_over_retry_until() -> None:
    p = policy(retry_until=NOW + 3600, max_exceptions=1)
    assert not after_error(p, 1, 1, NOW).retry


def test_timeout_with_fail_on_timeout_fails_at_once() -> None:
    p = policy(tries=5, fail_on_timeout=True)
    decision = after_error(p, 1, 1, NOW, timed_out=True)
    assert not decision.retry
    assert "fail_on_timeout" in decision.reason


def test_timeout_without_fail_on_timeout_is_retried() -> None:
    assert after_error(policy(tries=5), 1, 1, NOW, timed_out=True).retry


def test_fail_on_timeout_does_not_affect_ordinary_exceptions() -> None:
    assert after_error(policy(tries=5, fail_on_timeout=True), 1, 1, NOW).retry


@pytest.mark.parametrize(
    ("attempt", "delay"), [(1, 3.0), (2, 5.0), (3, 10.0), (4, 10.0), (7, 10.0)]
)
def test_backoff_list_is_per_attempt_and_repeats_the_last_entry(attempt: int, delay: float) -> None:
    decision = after_error(policy(tries=0, backoff=[3.0, 5.0, 10.0]), attempt, attempt, NOW)
    assert decision.retry
    assert decision.delay == delay


def test_single_backoff_applies_to_every_attempt() -> None:
    p = policy(tries=0, backoff=[7.0])
    assert [after_error(p, n, n, NOW).delay for n in (1, 2, 9)] == [7.0, 7.0, 7.0]


def test_exhausted_before_start_only_past_the_last_try() -> None:
    p = policy(tries=3)
    assert exhausted_before_start(p, 3, NOW) is None
    reason = exhausted_before_start(p, 4, NOW)
    assert reason == "attempted 3 time(s) already, tries=3"
