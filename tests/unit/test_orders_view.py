"""The orders view: its projector, and the idempotent fold every view goes through."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from hypothesis import given
from hypothesis import strategies as st

from streams import commands as c
from streams import events as e
from streams.commands import Message
from streams.envelopes import Event
from tables.orders import VIEW
from tables.view import Data, apply

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LINES = [c.OrderLine(sku="sku-1", quantity=2)]
PRICED = [c.PricedLine(sku="sku-1", quantity=2, unit_price=Decimal("5.00"))]
HISTORY: list[Message] = [
    e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES),
    e.OrderConfirmed(customer_id="cust-1", lines=PRICED, total=Decimal("10.00")),
    e.OrderPaid(customer_id="cust-1", amount=Decimal("10.00")),
    e.OrderShipped(customer_id="cust-1"),
]


def envelope(payload: Message, version: int, order_id: str = "order-1") -> Event:
    return Event(event_id=uuid4(), type=type(payload).__name__, aggregate_id=order_id,
                 version=version, command_id=UUID(int=version), correlation_id=UUID(int=0),
                 occurred_at=AT, payload=payload)


def fold(events: list[Event]) -> Data | None:
    row = None
    for event in events:
        row = apply(VIEW, row, event, event.aggregate_id) or row
    return row


def test_an_order_row_follows_its_events() -> None:
    row = fold([envelope(payload, n) for n, payload in enumerate(HISTORY, start=1)])
    assert row is not None
    assert row["data"] == {
        "order_id": "order-1", "status": "shipped", "customer_id": "cust-1",
        "lines": [{"sku": "sku-1", "quantity": 2, "unit_price": "5.00"}],
        "total": "10.00", "reason": None, "version": 4,
        "placed_at": AT.isoformat(), "updated_at": AT.isoformat(),
    }
    assert row["versions"] == {"order-1": 4}


def test_a_cancelled_order_keeps_its_reason() -> None:
    cancelled = e.OrderCancelled(customer_id="cust-1", reason="too slow")
    row = fold([envelope(HISTORY[0], 1), envelope(cancelled, 2)])
    assert row is not None and (row["data"]["status"], row["data"]["reason"]) == (
        "cancelled", "too slow")


@given(st.lists(st.integers(0, len(HISTORY) - 1), max_size=20))
def test_redelivered_events_change_nothing(redeliveries: list[int]) -> None:
    events = [envelope(payload, n) for n, payload in enumerate(HISTORY, start=1)]
    with_repeats = list(events)
    for index in redeliveries:
        with_repeats.insert(index + 1 + with_repeats.index(events[index]), events[index])
    assert fold(with_repeats) == fold(events)
