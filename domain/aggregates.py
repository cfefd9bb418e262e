"""The aggregates, which command types each one takes, and the pure handling of one command."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain import order, product
from domain.rejection import Rejected
from streams import commands as c
from streams import events as e
from streams.commands import Message
from streams.envelopes import Command, Event, stamp


@dataclass(frozen=True)
class Aggregate:
    kind: str
    state: type[Any]
    decide: Callable[[Any, Message], list[Message]]
    evolve: Callable[[Any, Message], Any]
    commands: frozenset[type[Message]]


ORDER = Aggregate(
    "order", order.Order, order.decide, order.evolve,
    frozenset({c.PlaceOrder, c.ConfirmOrder, c.RejectOrder, c.PayOrder, c.ShipOrder,
               c.CancelOrder}),
)
PRODUCT = Aggregate(
    "product", product.Product, product.decide, product.evolve,
    frozenset({c.RegisterProduct, c.ChangePrice, c.Restock, c.ReserveStock, c.ReleaseStock,
               c.DispatchStock}),
)
AGGREGATES = (ORDER, PRODUCT)
BY_COMMAND: dict[str, Aggregate] = {
    kind.__name__: aggregate for aggregate in AGGREGATES for kind in aggregate.commands
}


def aggregate_of(event: Message) -> Aggregate:
    """The aggregate an event payload belongs to."""
    return ORDER if isinstance(event, e.OrderEvent) else PRODUCT


def handle(aggregate: Aggregate, state: Any, command: Command,
           at: datetime) -> tuple[Any, list[Event]]:
    """Check the expected version, decide, and fold the new events into the state."""
    version = state.version if state is not None else 0
    if command.expected_version is not None and command.expected_version != version:
        raise Rejected(
            f"expected version {command.expected_version}, but the current version is {version}"
        )
    payloads = aggregate.decide(state, command.payload)
    for payload in payloads:
        state = aggregate.evolve(state, payload)
    return state, stamp(command, version, payloads, at)
