"""The wire contract: what parses, what is refused and where, and that events round-trip."""

from decimal import Decimal
from uuid import uuid4

import orjson
import pytest
from pydantic import ValidationError

from streams import commands as c
from streams import events as e
from streams.envelopes import encode, parse_command, parse_event, stamp, utc_now
from web.errors import field_errors


def place_order(**overrides: object) -> bytes:
    body = {
        "command_id": str(uuid4()),
        "type": "PlaceOrder",
        "aggregate_id": "order-1",
        "payload": {"customer_id": "cust-1", "lines": [{"sku": "sku-1", "quantity": 2}]},
    }
    body.update(overrides)
    return orjson.dumps(body)


def refusal(raw: bytes) -> list[dict[str, object]]:
    with pytest.raises(ValidationError) as caught:
        parse_command(raw)
    return field_errors(caught.value)


def test_a_valid_command_parses_to_its_typed_payload() -> None:
    command = parse_command(place_order())
    assert command.payload == c.PlaceOrder(
        customer_id="cust-1", lines=[c.OrderLine(sku="sku-1", quantity=2)])


def test_a_bad_field_is_named() -> None:
    raw = place_order(payload={"customer_id": "c", "lines": [{"sku": "s", "quantity": 0}]})
    assert [error["field"] for error in refusal(raw)] == ["payload.lines.0.quantity"]


def test_an_unknown_type_is_named_once() -> None:
    assert [error["field"] for error in refusal(place_order(type="Teleport"))] == ["type"]


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{", b"[]", b"null", b""])
def test_unreadable_bytes_are_refused(raw: bytes) -> None:
    assert refusal(raw)


@pytest.mark.parametrize("price", [1.5, 3])
def test_money_is_never_a_json_number(price: float) -> None:
    raw = place_order(type="ChangePrice", aggregate_id="sku-1", payload={"price": price})
    assert refusal(raw)[0]["field"] == "payload.price"
    command = parse_command(place_order(type="ChangePrice", payload={"price": "1.50"}))
    assert command.payload == c.ChangePrice(price=Decimal("1.50"))


@pytest.mark.parametrize("price", ["1E+1000000", "9.9999999999999999999999999999E+999999"])
def test_money_past_the_decimal_context_is_refused_as_too_many_digits(price: str) -> None:
    """Not raised as decimal.Overflow: the callers take a ValidationError for bad input (a 422,
    a parked record), and nothing else."""
    raw = place_order(type="ChangePrice", aggregate_id="sku-1", payload={"price": price})
    assert refusal(raw) == refusal(raw.replace(price.encode(), b"1E+999999"))
    event = orjson.loads(encode(stamp(parse_command(place_order(
        type="ChangePrice", aggregate_id="sku-1", payload={"price": "1.50"})), 0,
        [e.PriceChanged(price=Decimal("1.50"))], utc_now())[0]))
    event["payload"]["price"] = price
    with pytest.raises(ValidationError, match="decimal_max_digits"):
        parse_event(orjson.dumps(event))


def test_events_carry_deterministic_ids_and_gapless_versions() -> None:
    command = parse_command(place_order())
    payloads = [e.OrderPaid(customer_id="c1", amount=Decimal("1.00")),
                e.OrderShipped(customer_id="c1")]
    first = stamp(command, 4, payloads, utc_now())
    again = stamp(command, 4, payloads, first[0].occurred_at)
    assert first == again
    assert [event.version for event in first] == [5, 6]
    assert parse_event(encode(first[0])) == first[0]
    assert orjson.loads(encode(first[0]))["payload"] == {"customer_id": "c1", "amount": "1.00"}


def test_quantities_stay_inside_what_a_stored_row_can_hold() -> None:
    line = {"sku": "s", "quantity": 1_000_000_001}
    with pytest.raises(ValidationError, match="less than or equal"):
        parse_command(orjson.dumps({
            "command_id": str(uuid4()), "type": "PlaceOrder", "aggregate_id": "order-1",
            "payload": {"customer_id": "c", "lines": [line]}}))
