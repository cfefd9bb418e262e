"""The shapes of the HTTP answers, as pydantic models: they exist to generate /openapi.json."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from streams.commands import Money, OrderLine, PricedLine
from streams.envelopes import CommandResult


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Error(BaseModel):
    """Every 4xx and 5xx: `error` says what is wrong; some carry more fields alongside."""

    model_config = ConfigDict(extra="allow")
    error: str


class FieldError(Answer):
    field: str = Field(description="dotted location in the command, or `body`")
    message: str


class InvalidCommand(Answer):
    error: str
    details: list[FieldError]


class Submitted(Answer):
    command_id: UUID
    status: Literal["submitted"]


class Outcome(CommandResult):
    """A command's result, and the token that reads it back from any view."""

    token: str


class Lag(Answer):
    records: int | None
    seconds: float | None


class Meta(Answer):
    stale: bool
    applied: dict[str, int] = Field(description="event-log partition -> last offset folded")
    lag: Lag
    served_by: str
    behind: dict[str, int] | None = Field(None, description="what a stale answer still lacks")


class RowMeta(Meta):
    version: int | None
    versions: dict[str, int]
    occurred_at: datetime


class PageMeta(RowMeta):
    limit: int
    offset: int
    total: int


class WindowMeta(Meta):
    model_config = ConfigDict(populate_by_name=True)
    start: datetime = Field(alias="from")
    to: datetime
    window_seconds: int


OrderStatus = Literal["placed", "confirmed", "rejected", "paid", "shipped", "cancelled"]


class Order(Answer):
    order_id: str
    status: OrderStatus
    customer_id: str
    lines: list[PricedLine] | list[OrderLine]
    total: Money | None
    reason: str | None
    version: int
    placed_at: datetime
    updated_at: datetime


class Product(Answer):
    sku: str
    name: str
    price: Money
    on_hand: int
    reserved: int
    available: int
    version: int
    updated_at: datetime


class OrderSummary(Answer):
    order_id: str
    status: OrderStatus
    total: Money | None
    placed_at: datetime
    updated_at: datetime


class CustomerOrders(Answer):
    customer_id: str
    orders: list[OrderSummary]


class SalesHour(Answer):
    sku: str
    hour: datetime
    units: int
    revenue: str = Field(description="decimal string, net of cancellations (may be 0 or less)")


class SalesWindows(Answer):
    key: str
    windows: list[SalesHour]


ROWS: dict[str, tuple[type[BaseModel], type[Meta]]] = {
    "orders": (Order, RowMeta),
    "products": (Product, RowMeta),
    "customer-orders": (CustomerOrders, PageMeta),
    "sales": (SalesWindows, WindowMeta),
}
"""Per view: its row's data, and the meta that comes with it."""


class Health(Answer):
    status: Literal["ok", "degraded"] = Field(
        description="degraded while any dead letter waits to be replayed or discarded")
    dead_letters: int = Field(description="dead letters waiting, parked by any worker")
    parked_here: int = Field(description="records this worker has parked since it started")


class Ready(Answer):
    ready: bool
    rebalancing: bool | None = None
    recovering: bool | None = None


class Behind(Answer):
    records: int | None
    seconds: float | None
    applied: int | None


class LagReport(Answer):
    worker: str
    projections: dict[str, dict[str, Behind]]
    latency_ms: dict[str, dict[str, float | None]]


class Redirect(Answer):
    location: str
