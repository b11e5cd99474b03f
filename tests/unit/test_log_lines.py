"""The worker's log lines: buffered, then written to stderr a burst at a time."""

from __future__ import annotations

import io
import logging
import logging.handlers
from collections.abc import Iterator

import pytest

from conveyor.cli.common import _Burst, _Formatter

FORMAT = "%(asctime)s %(levelname)-5s %(message)s"


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, CountingStream, _Burst]]:
    stream = CountingStream()
    target = logging.StreamHandler(stream)
    target.setFormatter(_Formatter(FORMAT))
    burst = _Burst(256, flushLevel=logging.WARNING, target=target)
    log = logging.getLogger("conveyor.test.burst")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(burst)
    try:
        yield log, stream, burst
    finally:
        log.removeHandler(burst)


def test_a_burst_of_lines_is_one_write_with_every_line_in_order(
    logger: tuple[logging.Logger, CountingStream, _Burst],
) -> None:
    log, stream, burst = logger
    for i in range(100):
        log.info("job %d COMPLETED", i)
    assert stream.writes == 0  # still buffered
    burst.flush()
    assert stream.writes == 1
    lines = stream.getvalue().splitlines()
    assert [line.split(" INFO  ")[1] for line in lines] == [
        f"job {i} COMPLETED" for i in range(100)
    ]
    log.warning("lease lost")  # a warning goes out at once
    assert stream.writes == 2 and stream.getvalue().endswith("WARNING lease lost\n")


def test_lines_read_as_the_standard_formatter_writes_them() -> None:
    ours, standard = _Formatter(FORMAT), logging.Formatter(FORMAT)
    for created in (0.0005, 59.9999, 1_700_000_000.123456, 1_700_000_001.5):
        record = logging.LogRecord("conveyor", logging.INFO, __file__, 1, "job %s", ("a",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)


def test_a_line_that_cannot_be_formatted_does_not_take_the_others_with_it(
    logger: tuple[logging.Logger, CountingStream, _Burst], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, stream, burst = logger
    monkeypatch.setattr(logging, "raiseExceptions", False)  # report nothing to stderr
    log.info("fine %d", 1)
    log.info("broken %d", "not a number")
    log.info("fine %d", 2)
    burst.flush()
    assert [line.split(" INFO  ")[1] for line in stream.getvalue().splitlines()] == [
        "fine 1", "fine 2"
    ]  # fmt: skip
