"""The `products` view: name, price, stock on hand, reserved and available, per sku."""

from datetime import datetime

from streams import events as e
from streams.commands import Money
from streams.envelopes import Event
from tables.listing import Filter, Listing
from tables.view import Data, Row, View


class Product(Row):
    sku: str
    name: str
    price: Money
    on_hand: int
    reserved: int
    available: int
    version: int
    updated_at: datetime


def project(product: Data | None, event: Event, _: str = "") -> Data:
    match event.payload:
        case e.ProductRegistered(name=name, price=price, stock=stock):
            row: Data = {"sku": event.aggregate_id, "name": name, "price": str(price),
                         "on_hand": stock, "reserved": 0}
        case _ if product is None:
            raise ValueError(f"{event.type} before ProductRegistered for {event.aggregate_id}")
        case e.PriceChanged(price=price):
            row = {**product, "price": str(price)}
        case e.StockAdded(quantity=quantity):
            row = {**product, "on_hand": product["on_hand"] + quantity}
        case e.StockReserved(quantity=quantity):
            row = {**product, "reserved": product["reserved"] + quantity}
        case e.StockReleased(quantity=quantity):
            row = {**product, "reserved": product["reserved"] - quantity}
        case e.StockDispatched(quantity=quantity):
            row = {**product, "on_hand": product["on_hand"] - quantity,
                   "reserved": product["reserved"] - quantity}
        case _:
            row = dict(product)
    return {**row, "available": row["on_hand"] - row["reserved"], "version": event.version,
            "updated_at": event.occurred_at.isoformat()}


VIEW = View(
    name="products",
    version=1,
    handles=frozenset({"ProductRegistered", "PriceChanged", "StockAdded", "StockReserved",
                       "StockReservationRejected", "StockReleased", "StockDispatched"}),
    keys=lambda event: [event.aggregate_id],
    project=project,
    row=Product,
    listing=Listing(filters=(Filter("available_below", "available", "below", int,
                                    "products with fewer units available than this"),)),
)
