"""Handling one command: optimistic concurrency, and the saga's indifference to redelivery."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.aggregates import PRODUCT, handle
from domain.rejection import Rejected
from domain.saga import react
from streams import commands as c
from streams import events as e
from streams.envelopes import Command, Event, stamp

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def command(payload: c.Message, aggregate_id: str = "sku-1", **extra: object) -> Command:
    return Command(command_id=uuid4(), type=type(payload).__name__, aggregate_id=aggregate_id,
                   issued_at=AT, payload=payload, **extra)


def test_a_stale_expected_version_is_rejected_with_the_current_version() -> None:
    state, _ = handle(PRODUCT, None, command(c.RegisterProduct(name="Mug", price=Decimal(3))), AT)
    with pytest.raises(Rejected, match="expected version 3, but the current version is 1"):
        handle(PRODUCT, state, command(c.Restock(quantity=1), expected_version=3), AT)
    state, events = handle(PRODUCT, state, command(c.Restock(quantity=1), expected_version=1), AT)
    assert [event.version for event in events] == [2] and state.version == 2


def order_placed() -> Event:
    place = command(c.PlaceOrder(customer_id="c", lines=[c.OrderLine(sku="sku-1", quantity=1)]),
                    aggregate_id="o1")
    placed = e.OrderPlaced(customer_id="c", lines=place.payload.lines, channel="web")
    return stamp(place, 0, [placed], AT)[0]


def reserved() -> Event:
    reserve = command(c.ReserveStock(order_id="o1", quantity=1))
    payload = e.StockReserved(order_id="o1", quantity=1, unit_price=Decimal("3.00"))
    return stamp(reserve, 1, [payload], AT)[0]


def test_the_saga_issues_the_same_commands_again_for_a_redelivered_input() -> None:
    _, first = react(None, order_placed(), AT)
    _, again = react(None, order_placed(), AT)
    assert [cmd.command_id for cmd in first] == [cmd.command_id for cmd in again]


def test_a_redelivered_reply_changes_nothing() -> None:
    state, _ = react(None, order_placed(), AT)
    confirmed, commands = react(state, reserved(), AT)
    assert [cmd.type for cmd in commands] == ["ConfirmOrder"]
    assert react(confirmed, reserved(), AT) == (confirmed, [])
