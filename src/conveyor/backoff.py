"""Pure backoff schedules: how long to wait before attempt N+1."""

from __future__ import annotations

from collections.abc import Sequence


def normalize(value: float | Sequence[float] | str | None) -> list[float] | None:
    """Accept ``3``, ``[3, 5, 10]`` or the CLI's ``"3,5,10"``; refuse negatives, ``nan``,
    infinities and garbage."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            items = [float(p) for p in parts]
        except ValueError:
            raise ValueError(
                f"backoff must be seconds or a comma list like 3,5,10, got {value!r}"
            ) from None
    elif isinstance(value, int | float):
        items = [float(value)]
    else:
        items = [float(v) for v in value]
    if not items or any(not 0 <= v <= 1e10 for v in items):  # NaN fails this too
        raise ValueError(f"backoff must be one or more finite non-negative numbers, got {value!r}")
    return items


def delay_for(schedule: Sequence[float] | None, attempt: int) -> float:
    """Delay after the ``attempt``-th try (1-based); the last entry repeats, as in Laravel."""
    if not schedule:
        return 0.0
    index = min(max(attempt, 1), len(schedule)) - 1
    return float(schedule[index])
