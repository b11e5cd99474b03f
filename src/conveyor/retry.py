"""The retry policy, pure: given what happened to an attempt, release it again or fail it."""

from __future__ import annotations

from dataclasses import dataclass

from . import backoff as backoff_mod


@dataclass(frozen=True)
class Policy:
    """The effective policy of one job: the job's own settings over the worker's defaults."""

    tries: int
    backoff: list[float] | None
    retry_until: float | None
    max_exceptions: int | None
    fail_on_timeout: bool
    timeout: float | None


@dataclass(frozen=True)
class Decision:
    retry: bool
    delay: float = 0.0
    reason: str = ""


def exhausted_before_start(policy: Policy, attempts: int, now: float) -> str | None:
    """Why a job must fail without running (a crashed earlier attempt used the last try)."""
    if policy.retry_until is not None:
        if now > policy.retry_until:
            return "retry_until has passed"
        return None
    if policy.tries > 0 and attempts > policy.tries:
        return f"attempted {attempts - 1} time(s) already, tries={policy.tries}"
    return None


def after_error(
    policy: Policy, attempts: int, exceptions: int, now: float, *, timed_out: bool = False
) -> Decision:
    """Decide after an attempt that raised, timed out or lost its process.

    ``exceptions`` counts this one. With ``retry_until`` set, time replaces ``tries`` (Laravel's
    rule); ``max_exceptions`` bounds exceptions even when releases by the job itself are unlimited.
    """
    if timed_out and policy.fail_on_timeout:
        return Decision(False, reason="timed out and fail_on_timeout is set")
    if policy.max_exceptions is not None and exceptions >= policy.max_exceptions:
        return Decision(False, reason=f"max_exceptions={policy.max_exceptions} reached")
    if policy.retry_until is not None:
        if now >= policy.retry_until:
            return Decision(False, reason="retry_until has passed")
    elif policy.tries > 0 and attempts >= policy.tries:
        return Decision(False, reason=f"attempt {attempts} of {policy.tries} failed")
    return Decision(True, delay=backoff_mod.delay_for(policy.backoff, attempts))
