"""The `customer-orders` view: each customer's orders as summaries, newest first.

Keyed by customer, not by order, so its events are repartitioned by customer id.
"""

from datetime import datetime

from streams import events as e
from streams.commands import Money
from streams.envelopes import Event
from tables import orders
from tables.view import Data, Row, View

SUMMARY_FIELDS = ("order_id", "status", "total", "placed_at", "updated_at")


class OrderSummary(Row):
    order_id: str
    status: orders.Status
    total: Money | None
    placed_at: datetime
    updated_at: datetime


class CustomerOrders(Row):
    customer_id: str
    orders: list[OrderSummary]


def customer_of(event: Event) -> str:
    if not isinstance(event.payload, e.OrderEvent):
        raise TypeError(f"customer-orders does not fold {event.type}")
    return event.payload.customer_id


def project(customer: Data | None, event: Event, _: str = "") -> Data:
    summaries = {s["order_id"]: s for s in (customer or {}).get("orders", [])}
    order = orders.project(summaries.get(event.aggregate_id), event)
    summaries[event.aggregate_id] = {field: order[field] for field in SUMMARY_FIELDS}
    newest_first = sorted(summaries.values(), key=lambda s: (s["placed_at"], s["order_id"]),
                          reverse=True)
    return {"customer_id": customer_of(event), "orders": newest_first}


VIEW = View(
    name="customer-orders",
    version=1,
    handles=orders.VIEW.handles,
    keys=lambda event: [customer_of(event)],
    project=project,
    row=CustomerOrders,
    by_aggregate=False,
    paged="orders",
)
