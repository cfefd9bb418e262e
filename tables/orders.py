"""The `orders` view: one row per order, with its status, lines, total and timestamps.

Version 2 adds the order's sales `channel` (OrderPlaced schema version 2); built beside
version 1 from the whole event log, where every order placed before channels reads "web".
"""

from dataclasses import replace
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



class OrderV2(Order):
    channel: str


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


def project_v2(order: Data | None, event: Event, key: str = "") -> Data:
    row = project(order, event, key)
    match event.payload:
        case e.OrderPlaced(channel=channel):
            return {**row, "channel": channel}
    return row


VIEW_V2 = replace(VIEW, version=2, project=project_v2, row=OrderV2,
                  new_fields=frozenset({"channel"}))
VERSIONS = (VIEW, VIEW_V2)
