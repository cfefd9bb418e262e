"""The sales view: units and revenue per sku per hour, net of cancellations."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid4

from streams import commands as c
from streams import events as e
from streams.commands import Message
from streams.envelopes import Event
from tables.fold import fold

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LINES = [c.PricedLine(sku="sku-a", quantity=2, unit_price=Decimal("2.50")),
         c.PricedLine(sku="sku-b", quantity=1, unit_price=Decimal("4.00"))]


def event(order_id: str, version: int, payload: Message, at: datetime) -> Event:
    return Event(event_id=uuid4(), type=type(payload).__name__, aggregate_id=order_id,
                 version=version, command_id=UUID(int=version), correlation_id=UUID(int=0),
                 occurred_at=at, payload=payload)


def test_sales_are_booked_per_sku_and_hour_and_given_back_on_cancel() -> None:
    placed = e.OrderPlaced(customer_id="c", lines=[c.OrderLine(sku="sku-a", quantity=2)],
                    channel="web")
    log = [
        event("o1", 1, placed, NOON),
        event("o2", 1, placed, NOON),
        event("o1", 2, e.OrderConfirmed(customer_id="c", lines=LINES, total=Decimal("9.00")),
              NOON + timedelta(minutes=5)),
        event("o2", 2, e.OrderConfirmed(customer_id="c", lines=LINES[:1], total=Decimal("5.00")),
              NOON + timedelta(minutes=59, seconds=59)),
        event("o1", 3, e.OrderCancelled(customer_id="c", reason="", lines=LINES),
              NOON + timedelta(hours=1, minutes=1)),
    ]
    sales = {key: row["data"] for key, row in fold(log)["sales"].items()}
    assert sales == {
        "sku-a@2026-11-23T12:00:00+00:00": {"sku": "sku-a", "hour": "2026-11-23T12:00:00+00:00",
                                            "units": 4, "revenue": "10.00"},
        "sku-b@2026-11-23T12:00:00+00:00": {"sku": "sku-b", "hour": "2026-11-23T12:00:00+00:00",
                                            "units": 1, "revenue": "4.00"},
        "sku-a@2026-11-23T13:00:00+00:00": {"sku": "sku-a", "hour": "2026-11-23T13:00:00+00:00",
                                            "units": -2, "revenue": "-5.00"},
        "sku-b@2026-11-23T13:00:00+00:00": {"sku": "sku-b", "hour": "2026-11-23T13:00:00+00:00",
                                            "units": -1, "revenue": "-4.00"},
    }


def test_a_cancelled_unconfirmed_order_books_nothing() -> None:
    placed = e.OrderPlaced(customer_id="c", lines=[c.OrderLine(sku="sku-a", quantity=2)],
                    channel="web")
    log = [event("o1", 1, placed, NOON),
           event("o1", 2, e.OrderCancelled(customer_id="c", reason=""), NOON)]
    assert fold(log)["sales"] == {}
