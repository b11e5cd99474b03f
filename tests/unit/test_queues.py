"""The one queue-name rule: what it takes and what it refuses, with a message saying why."""

from __future__ import annotations

import pytest

from conveyor.errors import ConveyorError, InvalidQueueName
from conveyor.queues import MAX_QUEUE_NAME, check_queue_name


@pytest.mark.parametrize(
    "name",
    ["default", "emails-high", "a", "x" * MAX_QUEUE_NAME, "\U0001f600" * MAX_QUEUE_NAME,
     "two words", "[/]", "ü.q:1"],
)  # fmt: skip
def test_valid_names_come_back_unchanged(name: str) -> None:
    assert check_queue_name(name) == name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "empty"),
        ("x" * (MAX_QUEUE_NAME + 1), f"at most {MAX_QUEUE_NAME}"),
        ("x" * 5000, f"at most {MAX_QUEUE_NAME}"),
        ("a\x00b", "'\\x00'"),
        ("a\x1b[2Jb", "'\\x1b'"),
        ("a\nb", "'\\n'"),
        ("a\x7f", "'\\x7f'"),
        ("a\x85", "'\\x85'"),
        ("a\u202eb", "'\\u202e'"),
        ("a\u2066b", "'\\u2066'"),
        ("a\ud800", "'\\ud800'"),
        ("high,default", "a comma"),
        (" default", "whitespace"),
        ("default\u3000", "whitespace"),
        (5, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_invalid_names_are_refused_saying_why(name: object, says: str) -> None:
    with pytest.raises(InvalidQueueName) as caught:
        check_queue_name(name)
    assert says in str(caught.value)
    assert isinstance(caught.value, ConveyorError) and isinstance(caught.value, ValueError)
