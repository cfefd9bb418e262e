"""The Product aggregate: pure decide(state, command) -> events and evolve(state, event)."""

from decimal import Decimal

from domain.rejection import Rejected
from streams import commands as c
from streams import events as e
from streams.commands import Message


class Product(Message):
    version: int  # first: a standby reads it from there (streams.store)
    name: str
    price: Decimal
    on_hand: int
    reservations: dict[str, int] = {}

    @property
    def available(self) -> int:
        return self.on_hand - sum(self.reservations.values())


def decide(state: Product | None, command: Message) -> list[Message]:
    match command:
        case c.RegisterProduct(name=name, price=price, stock=stock):
            if state is not None:
                raise Rejected("product already registered")
            return [e.ProductRegistered(name=name, price=price, stock=stock)]
    product = _existing(state)
    match command:
        case c.ChangePrice(price=price):
            return [e.PriceChanged(price=price)]
        case c.Restock(quantity=quantity):
            return [e.StockAdded(quantity=quantity)]
        case c.ReserveStock(order_id=order_id, quantity=quantity):
            if order_id in product.reservations:
                raise Rejected(f"stock is already reserved for order {order_id}")
            if quantity > product.available:
                return [
                    e.StockReservationRejected(
                        order_id=order_id, quantity=quantity, available=product.available
                    )
                ]
            return [e.StockReserved(order_id=order_id, quantity=quantity, unit_price=product.price)]
        case c.ReleaseStock(order_id=order_id):
            if order_id not in product.reservations:
                raise Rejected(f"no stock is reserved for order {order_id}")
            return [e.StockReleased(order_id=order_id, quantity=product.reservations[order_id])]
        case c.DispatchStock(order_id=order_id):
            if order_id not in product.reservations:
                raise Rejected(f"no stock is reserved for order {order_id}")
            return [e.StockDispatched(order_id=order_id,
                                      quantity=product.reservations[order_id])]
    raise Rejected(f"a product does not handle {type(command).__name__}")


def evolve(state: Product | None, event: Message) -> Product:
    match event:
        case e.ProductRegistered(name=name, price=price, stock=stock):
            return Product(name=name, price=price, on_hand=stock, version=1)
    product = _existing(state)
    update: dict[str, object] = {"version": product.version + 1}
    match event:
        case e.PriceChanged(price=price):
            update["price"] = price
        case e.StockAdded(quantity=quantity):
            update["on_hand"] = product.on_hand + quantity
        case e.StockReserved(order_id=order_id, quantity=quantity):
            update["reservations"] = {**product.reservations, order_id: quantity}
        case e.StockReservationRejected():
            pass
        case e.StockReleased(order_id=order_id):
            update["reservations"] = _without(product.reservations, order_id)
        case e.StockDispatched(order_id=order_id, quantity=quantity):
            update["on_hand"] = product.on_hand - quantity
            update["reservations"] = _without(product.reservations, order_id)
        case _:
            raise ValueError(f"a product does not apply {type(event).__name__}")
    return product.model_copy(update=update)


def _without(reservations: dict[str, int], order_id: str) -> dict[str, int]:
    return {key: qty for key, qty in reservations.items() if key != order_id}


def _existing(state: Product | None) -> Product:
    if state is None:
        raise Rejected("no such product")
    return state
