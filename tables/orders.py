"""The `orders` view: one row per order, with its status, lines, total and timestamps."""

from datetime import datetime
from typing import Literal, get_args

from streams import events as e
from streams.commands import Money, OrderLine, PricedLine
from streams.envelopes import Event
from tables.listing import Filter, Listing
from tables.view import Data, Row, View

Status = Literal["placed", "confirmed", "rejected", "paid", "shipped", "cancelled"]


class Order(Row):
    order_id: str
    status: Status
    customer_id: str
    lines: list[PricedLine] | list[OrderLine]
    total: Money | None
    reason: str | None
    version: int
    placed_at: datetime
    updated_at: datetime

STATUS_AFTER = {
    "OrderConfirmed": "confirmed",
    "OrderRejected": "rejected",
    "OrderPaid": "paid",
    "OrderShipped": "shipped",
    "OrderCancelled": "cancelled",
}


def project(order: Data | None, event: Event, _: str = "") -> Data:
    at = event.occurred_at.isoformat()
    match event.payload:
        case e.OrderPlaced(customer_id=customer_id, lines=lines):
            return {
                "order_id": event.aggregate_id,
                "status": "placed",
                "customer_id": customer_id,
                "lines": [line.model_dump(mode="json") for line in lines],
                "total": None,
                "reason": None,
                "version": event.version,
                "placed_at": at,
                "updated_at": at,
            }
    if order is None:
        raise ValueError(f"{event.type} before OrderPlaced for order {event.aggregate_id}")
    changes: Data = {"status": STATUS_AFTER[event.type], "version": event.version, "updated_at": at}
    match event.payload:
        case e.OrderConfirmed(lines=priced, total=total):
            changes["lines"] = [line.model_dump(mode="json") for line in priced]
            changes["total"] = str(total)
        case e.OrderRejected(reason=reason) | e.OrderCancelled(reason=reason):
            changes["reason"] = reason
    return {**order, **changes}


VIEW = View(
    name="orders",
    version=1,
    handles=frozenset({"OrderPlaced", *STATUS_AFTER}),
    keys=lambda event: [event.aggregate_id],
    project=project,
    row=Order,
    listing=Listing(
        filters=(Filter("status", "status", "equals", str, "orders in this status",
                        choices=get_args(Status)),
                 Filter("customer_id", "customer_id", "equals", str, "orders of this customer")),
        index="status",
    ),
)
