"""A throwaway view, written as a user would add one: this module and one registry line."""

from streams import events as e
from streams.envelopes import Event
from tables.view import Data, Row, View


class OrderLines(Row):
    order_id: str
    lines: int
    units: int


def project(row: Data | None, event: Event, _: str = "") -> Data:
    assert isinstance(event.payload, e.OrderPlaced)
    return {"order_id": event.aggregate_id, "lines": len(event.payload.lines),
            "units": sum(line.quantity for line in event.payload.lines)}


VIEW = View(
    name="order-lines",
    version=1,
    handles=frozenset({"OrderPlaced"}),
    keys=lambda event: [event.aggregate_id],
    project=project,
    row=OrderLines,
)
