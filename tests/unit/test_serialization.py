"""Fields travel as JSON: refused at dispatch when they cannot, rebuilt with their types after."""

from __future__ import annotations

import dataclasses
import enum
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, Job, SerializationError
from conveyor.errors import PayloadError
from conveyor.serialization import decode_fields, encode_fields


class Plan(enum.Enum):
    FREE = "free"
    PRO = "pro"


@dataclasses.dataclass
class Address:
    city: str
    since: datetime


@dataclasses.dataclass
class Customer:
    name: str
    address: Address
    plan: Plan = Plan.FREE


class Anything(Job):
    value: Any = None

    def handle(self) -> None:
        pass


class Rich(Job):
    at: datetime
    day: date
    ref: uuid.UUID
    plan: Plan
    customer: Customer
    price: Decimal
    tags: tuple[str, ...] = ()
    seen: set[int] = dataclasses.field(default_factory=set)
    blob: bytes = b""
    scores: dict[str, float] = dataclasses.field(default_factory=dict)
    note: str | None = None

    def handle(self) -> None:
        pass


class Later(Job):
    wait: timedelta

    def handle(self) -> None:
        pass


class Typed(Job):
    user_id: int
    email: str

    def handle(self) -> None:
        pass


@pytest.fixture
def open_file(tmp_path: Path) -> Iterator[Any]:
    with (tmp_path / "f.txt").open("w") as fh:
        yield fh


@pytest.fixture
def open_socket() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        yield sock


@pytest.mark.parametrize("fixture", ["open_file", "lambda", "open_socket", "object"])
def test_unserializable_value_names_job_class_and_field(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    values = {"lambda": lambda: 1, "object": object()}
    value = values[fixture] if fixture in values else request.getfixturevalue(fixture)
    with pytest.raises(SerializationError) as info:
        encode_fields(Anything(value=value))
    err = info.value
    assert err.job == Anything.job_name
    assert err.field == "value"
    assert f"{Anything.job_name}.value" in str(err)
    assert type(value).__qualname__ in str(err)


def test_unserializable_value_deep_inside_a_container_names_the_top_field() -> None:
    with pytest.raises(SerializationError) as info:
        encode_fields(Anything(value={"ok": [1, 2, {"bad": lambda: 0}]}))
    assert info.value.field == "value"


class Level(enum.IntEnum):
    LOW = 1


class Colour(enum.StrEnum):
    RED = "red"


def test_subclasses_of_plain_types_travel_as_plain_values() -> None:
    """Plain str/int/float values skip conversion; their subclasses (enums) must not."""
    out = encode_fields(Anything(value=Level.LOW))
    assert out == {"value": 1} and type(out["value"]) is int
    out = encode_fields(Anything(value=Colour.RED))
    assert out == {"value": "red"} and type(out["value"]) is str
    assert encode_fields(Anything(value=2.5)) == {"value": 2.5}


def test_error_does_not_chain_msgspec_internals() -> None:
    with pytest.raises(SerializationError) as info:
        encode_fields(Anything(value=object()))
    assert info.value.__cause__ is None


def rich_job() -> Rich:
    return Rich(
        at=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        day=date(2024, 2, 29),
        ref=uuid.uuid4(),
        plan=Plan.PRO,
        customer=Customer("Ada", Address("London", datetime(2020, 1, 1, 12, 0))),
        price=Decimal("19.99"),
        tags=("a", "b"),
        seen={1, 2, 3},
        blob=b"\x00\xffbinary",
        scores={"x": 1.5},
        note=None,
    )


def test_rich_values_round_trip_with_their_types() -> None:
    job = rich_job()
    back = decode_fields(Rich, encode_fields(job))
    assert back == job
    assert isinstance(back.customer.address.since, datetime)
    assert back.plan is Plan.PRO
    assert isinstance(back.ref, uuid.UUID)


def test_encoded_fields_are_plain_json_values() -> None:
    encoded = encode_fields(rich_job())
    json.dumps(encoded)
    assert encoded["plan"] == "pro"
    assert encoded["price"] == "19.99"
    assert encoded["customer"]["address"]["city"] == "London"


def test_timedelta_round_trips() -> None:
    back = decode_fields(Later, encode_fields(Later(wait=timedelta(minutes=1, seconds=30))))
    assert back.wait == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"user_id": [1], "email": "a@b"}, "user_id"),
        ({"user_id": "not a number", "email": "a@b"}, "user_id"),
        ({"user_id": 1, "email": {"x": 1}}, "email"),
    ],
)
def test_wrong_types_raise_payload_error_naming_the_field(args: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode_fields(Typed, args)
    assert Typed.job_name in str(info.value)
    assert f"$.{field}" in str(info.value)


def test_missing_field_is_named() -> None:
    with pytest.raises(PayloadError) as info:
        decode_fields(Typed, {"user_id": 1})
    assert "email" in str(info.value)


def test_nested_wrong_type_names_the_path() -> None:
    args = encode_fields(rich_job())
    args["customer"]["address"]["since"] = "yesterday"
    with pytest.raises(PayloadError) as info:
        decode_fields(Rich, args)
    assert "$.customer.address.since" in str(info.value)


def test_serialization_error_is_raised_at_dispatch_and_nothing_is_queued(app: Conveyor) -> None:
    with pytest.raises(SerializationError):
        Anything(value=lambda: 1).dispatch()
    assert app.driver().size("default").total == 0


def test_nan_and_infinity_are_refused_at_dispatch_naming_the_field() -> None:
    import math

    class Measure(Job):
        value: float
        series: list[float]

    with pytest.raises(SerializationError, match=r"Measure\.value: nan"):
        encode_fields(Measure(value=math.nan, series=[]))
    with pytest.raises(SerializationError, match=r"Measure\.series: inf"):
        encode_fields(Measure(value=1.0, series=[1.0, math.inf]))


class _Typed(Job):
    user_id: int
    name: str | None = None
    ratio: float = 1.0
    tags: list[int] | None = None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"user_id": "abc"}, "user_id"),
        ({"user_id": 1, "name": 5}, "name"),
        ({"user_id": 1, "ratio": "fast"}, "ratio"),
        ({"user_id": 1, "tags": ["x"]}, "tags"),
    ],
)
def test_a_value_that_does_not_fit_its_field_fails_at_dispatch(
    fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(SerializationError) as info:
        encode_fields(_Typed(**fields))
    assert info.value.field == field and "does not fit its type" in str(info.value)


def test_values_that_fit_their_fields_encode_as_they_are() -> None:
    job = _Typed(user_id=1, name=None, ratio=2, tags=[1, 2])
    assert encode_fields(job) == {"user_id": 1, "name": None, "ratio": 2, "tags": [1, 2]}
