"""The answer models behind /openapi.json fit the rows the pure projectors make, in every view."""

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from streams import commands as c
from streams import events as e
from streams.commands import Message
from streams.envelopes import Event
from tables.registry import VIEWS
from tables.view import Data, apply
from web.answers import ROWS

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PRICED = [c.PricedLine(sku="sku-1", quantity=2, unit_price=Decimal("5.5"))]
ORDER: list[Message] = [
    e.OrderPlaced(customer_id="cust-1", lines=[c.OrderLine(sku="sku-1", quantity=2)],
                    channel="web"),
    e.OrderConfirmed(customer_id="cust-1", lines=PRICED, total=Decimal("11.0")),
    e.OrderPaid(customer_id="cust-1", amount=Decimal("11.0")),
    e.OrderCancelled(customer_id="cust-1", reason="changed mind", lines=PRICED),
]
PRODUCT: list[Message] = [
    e.ProductRegistered(name="Lamp", price=Decimal("12.50"), stock=3),
    e.StockReserved(order_id="order-1", quantity=2, unit_price=Decimal("12.50")),
    e.StockDispatched(order_id="order-1", quantity=2),
    e.PriceChanged(price=Decimal("9")),
]


def envelope(payload: Message, version: int, aggregate_id: str) -> Event:
    return Event(event_id=uuid4(), type=type(payload).__name__, aggregate_id=aggregate_id,
                 version=version, command_id=UUID(int=version), correlation_id=UUID(int=0),
                 occurred_at=AT, payload=payload)


def rows(view: str, history: list[Message], aggregate_id: str) -> list[Data]:
    """Every state the view's row for the history's (first) key goes through."""
    seen, row = [], None
    for version, payload in enumerate(history, start=1):
        event = envelope(payload, version, aggregate_id)
        if event.type in VIEWS[view].handles:
            key = VIEWS[view].keys(event)[0]
            row = apply(VIEWS[view], row, event, key) or row
            seen.append(row["data"])
    return seen


def test_every_view_has_its_answer_documented() -> None:
    assert ROWS.keys() == VIEWS.keys()


@pytest.mark.parametrize(("view", "history", "aggregate_id"), [
    ("orders", ORDER, "order-1"),
    ("customer-orders", ORDER, "order-1"),
    ("sales", ORDER, "order-1"),
    ("products", PRODUCT, "sku-1"),
])
def test_each_state_of_a_row_fits_its_model(view: str, history: list[Message],
                                            aggregate_id: str) -> None:
    model = ROWS[view][0]
    states = rows(view, history, aggregate_id)
    assert states
    for data in states:
        model.model_validate({"key": "sku-1", "windows": [data]} if view == "sales" else data)
