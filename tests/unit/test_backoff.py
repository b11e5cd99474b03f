"""Backoff schedules come from job classes and from the CLI's ``--backoff 3,5,10``."""

from __future__ import annotations

import pytest

from conveyor.backoff import delay_for, normalize


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3,5,10", [3.0, 5.0, 10.0]),
        (" 3 , 5 ,10 ", [3.0, 5.0, 10.0]),
        ("0", [0.0]),
        ("1.5", [1.5]),
        (4, [4.0]),
        (2.5, [2.5]),
        ([1, 2], [1.0, 2.0]),
        ((0, 30), [0.0, 30.0]),
        (None, None),
    ],
)
def test_normalize_accepts_seconds_lists_and_comma_strings(
    value: object, expected: list[float] | None
) -> None:
    assert normalize(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["x", "3,x", "3;5", "", ",", "-1", "3,-5", [], [-1]])
def test_normalize_refuses_garbage_with_a_message_showing_the_value(value: object) -> None:
    with pytest.raises(ValueError) as info:
        normalize(value)  # type: ignore[arg-type]
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("attempt", "expected"), [(0, 3.0), (1, 3.0), (2, 5.0), (3, 10.0), (4, 10.0), (100, 10.0)]
)
def test_delay_for_repeats_the_last_entry(attempt: int, expected: float) -> None:
    assert delay_for([3.0, 5.0, 10.0], attempt) == expected


@pytest.mark.parametrize("schedule", [None, []])
def test_no_schedule_means_no_delay(schedule: list[float] | None) -> None:
    assert delay_for(schedule, 3) == 0.0
