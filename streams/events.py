"""Event payloads: one frozen class per event, keyed by its pinned wire name."""

from pydantic import PositiveInt

from streams.commands import Channel, Message, Money, Name, OrderLine, PricedLine


class ProductRegistered(Message):
    name: Name
    price: Money
    stock: int


class PriceChanged(Message):
    price: Money


class StockAdded(Message):
    quantity: PositiveInt


class StockReserved(Message):
    order_id: Name
    quantity: PositiveInt
    unit_price: Money


class StockReservationRejected(Message):
    order_id: Name
    quantity: PositiveInt
    available: int


class StockReleased(Message):
    order_id: Name
    quantity: PositiveInt


class StockDispatched(Message):
    """A shipped order's reserved units left: on hand and reserved both drop by them."""

    order_id: Name
    quantity: PositiveInt


class OrderEvent(Message):
    """Every order event names its customer, so views keyed by customer need no lookup."""

    customer_id: Name


class OrderPlaced(OrderEvent):
    """Schema version 2 added `channel` (see `streams.upcasting`)."""

    lines: list[OrderLine]
    channel: Channel


class OrderConfirmed(OrderEvent):
    lines: list[PricedLine]
    total: Money


class OrderRejected(OrderEvent):
    reason: str


class OrderPaid(OrderEvent):
    amount: Money


class OrderShipped(OrderEvent):
    pass


class OrderCancelled(OrderEvent):
    reason: str
    lines: list[PricedLine] = []  # what a confirmed or paid order had booked, now given back


EVENTS: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (
        ProductRegistered, PriceChanged, StockAdded, StockReserved,
        StockReservationRejected, StockReleased, StockDispatched, OrderPlaced, OrderConfirmed,
        OrderRejected, OrderPaid, OrderShipped, OrderCancelled,
    )
}


class OrderPlacedV1(OrderEvent):
    """OrderPlaced as schema version 1 wrote it, before `channel`."""

    lines: list[OrderLine]


PAST_VERSIONS: dict[tuple[str, int], type[Message]] = {
    ("OrderPlaced", 1): OrderPlacedV1,
}
"""The payload models of superseded schema versions: kept for their JSON Schemas and to check
the golden corpus, never to read the log (upcasters bring old payloads to EVENTS' models)."""
