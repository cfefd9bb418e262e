"""The `sales` view: units and revenue booked per sku per hour (a Faust windowed table).

A sale is booked when an order is confirmed at its reserved prices, and given back in the
hour a confirmed or paid order is cancelled; each hour's row is net of both.
"""

from datetime import datetime
from decimal import Decimal

from pydantic import Field

from streams import events as e
from streams.commands import PricedLine
from streams.envelopes import Event
from tables.listing import Ranking
from tables.view import Data, Row, View

HOUR = 3600


class SalesHour(Row):
    sku: str
    hour: datetime
    units: int
    revenue: str = Field(description="decimal string, net of cancellations (may be 0 or less)")


def _lines(event: Event) -> list[PricedLine]:
    match event.payload:
        case e.OrderConfirmed(lines=lines) | e.OrderCancelled(lines=lines):
            return lines
    return []


def project(hour: Data | None, event: Event, sku: str) -> Data:
    sign = -1 if isinstance(event.payload, e.OrderCancelled) else 1
    row = hour or {"sku": sku, "hour": VIEW.window_start(event).isoformat(), "units": 0,
                   "revenue": "0.00"}
    units = sum(line.quantity for line in _lines(event) if line.sku == sku)
    revenue = sum((line.unit_price * line.quantity for line in _lines(event) if line.sku == sku),
                  Decimal(0))
    return {**row, "units": row["units"] + sign * units,
            "revenue": str(Decimal(row["revenue"]) + sign * revenue)}


VIEW = View(
    name="sales",
    version=1,
    handles=frozenset({"OrderConfirmed", "OrderCancelled"}),
    keys=lambda event: sorted({line.sku for line in _lines(event)}),
    project=project,
    row=SalesHour,
    by_aggregate=False,
    window=HOUR,
    ranking=Ranking(key="sku", by="units", sums=("units", "revenue")),
)
