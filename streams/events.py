"""Event payloads: one frozen class per event, keyed by its pinned wire name."""

from streams.commands import Message, Money, Name, OrderLine, PositiveInt, PricedLine


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


class OrderPlaced(Message):
    customer_id: Name
    lines: list[OrderLine]


class OrderConfirmed(Message):
    lines: list[PricedLine]
    total: Money


class OrderRejected(Message):
    reason: str


class OrderPaid(Message):
    amount: Money


class OrderShipped(Message):
    pass


class OrderCancelled(Message):
    reason: str


EVENTS: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (
        ProductRegistered, PriceChanged, StockAdded, StockReserved,
        StockReservationRejected, StockReleased, OrderPlaced, OrderConfirmed,
        OrderRejected, OrderPaid, OrderShipped, OrderCancelled,
    )
}
