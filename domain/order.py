"""The Order aggregate: pure decide(state, command) -> events and evolve(state, event)."""

from decimal import Decimal
from typing import Literal

from domain.rejection import Rejected
from streams import commands as c
from streams import events as e
from streams.commands import Message

Status = Literal["placed", "confirmed", "rejected", "paid", "shipped", "cancelled"]


class Order(Message):
    version: int  # first: a standby reads it from there (streams.store)
    customer_id: str
    status: Status
    lines: list[c.OrderLine]
    priced: list[c.PricedLine] = []  # the lines at their reserved prices, once confirmed
    total: Decimal | None = None


def decide(state: Order | None, command: Message) -> list[Message]:
    match command:
        case c.PlaceOrder(customer_id=customer_id, lines=lines, channel=channel):
            if state is not None:
                raise Rejected("order already exists")
            skus = [line.sku for line in lines]
            if len(set(skus)) != len(skus):
                raise Rejected("each sku may appear on one line only")
            return [e.OrderPlaced(customer_id=customer_id, lines=lines, channel=channel)]
    order = _existing(state)
    match command:
        case c.ConfirmOrder(lines=priced, total=total):
            _require(order, "placed", "confirm")
            placed = sorted((line.sku, line.quantity) for line in order.lines)
            if sorted((line.sku, line.quantity) for line in priced) != placed:
                raise Rejected("a confirmation's lines must be the placed lines (sku and quantity)")
            if total != sum((line.unit_price * line.quantity for line in priced), Decimal(0)):
                raise Rejected(f"total {total} does not match its lines")
            return [e.OrderConfirmed(customer_id=order.customer_id, lines=priced, total=total)]
        case c.RejectOrder(reason=reason):
            _require(order, "placed", "reject")
            return [e.OrderRejected(customer_id=order.customer_id, reason=reason)]
        case c.PayOrder(amount=amount):
            _require(order, "confirmed", "pay")
            if amount != order.total:
                raise Rejected(f"amount {amount} does not equal the order total {order.total}")
            return [e.OrderPaid(customer_id=order.customer_id, amount=amount)]
        case c.ShipOrder():
            _require(order, "paid", "ship")
            return [e.OrderShipped(customer_id=order.customer_id)]
        case c.CancelOrder(reason=reason):
            if order.status not in ("placed", "confirmed", "paid"):
                raise Rejected(f"a {order.status} order cannot be cancelled")
            return [e.OrderCancelled(customer_id=order.customer_id, reason=reason,
                                     lines=order.priced)]
    raise Rejected(f"an order does not handle {type(command).__name__}")


def evolve(state: Order | None, event: Message) -> Order:
    match event:
        case e.OrderPlaced(customer_id=customer_id, lines=lines):
            return Order(customer_id=customer_id, status="placed", lines=lines, version=1)
    order = _existing(state)
    version = order.version + 1
    match event:
        case e.OrderConfirmed(lines=priced, total=total):
            return order.model_copy(
                update={"status": "confirmed", "priced": priced, "total": total, "version": version}
            )
        case e.OrderRejected():
            return order.model_copy(update={"status": "rejected", "version": version})
        case e.OrderPaid():
            return order.model_copy(update={"status": "paid", "version": version})
        case e.OrderShipped():
            return order.model_copy(update={"status": "shipped", "version": version})
        case e.OrderCancelled():
            return order.model_copy(update={"status": "cancelled", "version": version})
    raise ValueError(f"an order does not apply {type(event).__name__}")


def _existing(state: Order | None) -> Order:
    if state is None:
        raise Rejected("no such order")
    return state


def _require(order: Order, status: Status, action: str) -> None:
    if order.status != status:
        raise Rejected(f"cannot {action} a {order.status} order")
