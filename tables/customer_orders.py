"""The `customer-orders` view: each customer's orders as summaries, newest first.

Keyed by customer, not by order, so its events are repartitioned by customer id.
"""

from streams import events as e
from streams.envelopes import Event
from tables import orders
from tables.view import Data, View

SUMMARY_FIELDS = ("order_id", "status", "total", "placed_at", "updated_at")


def project(customer: Data | None, event: Event, _: str = "") -> Data:
    assert isinstance(event.payload, e.OrderEvent)
    summaries = {s["order_id"]: s for s in (customer or {}).get("orders", [])}
    order = orders.project(summaries.get(event.aggregate_id), event)
    summaries[event.aggregate_id] = {field: order[field] for field in SUMMARY_FIELDS}
    newest_first = sorted(summaries.values(), key=lambda s: (s["placed_at"], s["order_id"]),
                          reverse=True)
    return {"customer_id": event.payload.customer_id, "orders": newest_first}


VIEW = View(
    name="customer-orders",
    version=1,
    handles=orders.VIEW.handles,
    keys=lambda event: [event.payload.customer_id],
    project=project,
    by_aggregate=False,
    paged="orders",
)
