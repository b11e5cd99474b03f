"""Queue names on every backend: a bad one is refused at dispatch, before any backend sees it
(the raw errors were MariaDB's 191-character column and PostgreSQL's NUL in text), and the
longest valid one is stored and read back everywhere."""

from __future__ import annotations

from typing import ClassVar

import pytest

from conveyor import Conveyor, Job, batch, chain
from conveyor.errors import InvalidQueueName
from conveyor.queues import MAX_QUEUE_NAME

from .jobs import Step

BAD = ["x" * 200, "x" * 5000, "bad\x00name", "", "a,b", " padded "]


class LongQueue(Job):
    queue: ClassVar[str | None] = "q" * 200

    def handle(self) -> None: ...


@pytest.mark.parametrize("name", BAD)
def test_a_bad_queue_name_is_refused_at_on_queue(bus_app: Conveyor, name: str) -> None:
    for pending in (Step(key="a"), chain([Step(key="a")]), batch([Step(key="a")])):
        with pytest.raises(InvalidQueueName):
            pending.on_queue(name)
    assert bus_app.driver().queues() == []


def test_a_bad_queue_name_from_the_job_class_is_refused_at_dispatch(bus_app: Conveyor) -> None:
    with pytest.raises(InvalidQueueName, match="at most 80"):
        LongQueue().dispatch()
    assert bus_app.driver().queues() == []


def test_the_longest_valid_name_in_four_byte_characters_works_everywhere(
    bus_app: Conveyor,
) -> None:
    name = "\U0001f600" * MAX_QUEUE_NAME
    Step(key="a").on_queue(name).dispatch()
    assert bus_app.driver().queues() == [name]
    assert bus_app.driver().size(name).pending == 1
