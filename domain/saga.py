"""The reservation saga, pure: what to command next when an order's reservations move on.

OrderPlaced -> one ReserveStock per line; all reserved -> ConfirmOrder with the reserved
prices; any rejected -> RejectOrder, and ReleaseStock for what was reserved (the
compensation); a cancelled order releases its stock, a shipped one dispatches it. Command
ids derive from the order and the step, so a redelivered input re-issues identical commands,
which the handler dedupes.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal
from uuid import UUID, uuid5

from streams import commands as c
from streams import events as e
from streams.commands import Message
from streams.envelopes import Command, CommandResult, Event

SAGA_NAMESPACE = UUID("6b1f3c0e-8f4a-4d1e-9b7a-2f5c3e9d1a70")
Outcome = Literal["reserving", "confirmed", "rejected", "cancelled", "shipped"]
Input = Event | CommandResult


class Reservation(Message):
    order_id: str
    lines: dict[str, int]
    reserved: dict[str, Decimal] = {}
    rejected: list[str] = []
    outcome: Outcome = "reserving"


def order_of(message: Input) -> str | None:
    """The order a saga input belongs to, or None if the saga does not care about it."""
    if isinstance(message, CommandResult):
        unreservable = message.type == "ReserveStock" and message.status == "rejected"
        return message.reply_to if unreservable else None
    match message.payload:
        case e.OrderPlaced() | e.OrderCancelled() | e.OrderShipped():
            return message.aggregate_id
        case e.StockReserved(order_id=order_id) | e.StockReservationRejected(order_id=order_id):
            return order_id
    return None


def react(state: Reservation | None, message: Input,
          at: datetime) -> tuple[Reservation | None, list[Command]]:
    """The saga's next state and commands; `at` is when the input was recorded."""
    if isinstance(message, CommandResult):
        reason = f"{message.aggregate_id}: {message.reason}"
        return _unreservable(state, message.aggregate_id, reason, _Cause(None, at))
    cause = _Cause(message.correlation_id, at)
    match message.payload:
        case e.OrderPlaced(lines=lines) if state is None:
            state = Reservation(order_id=message.aggregate_id,
                                lines={line.sku: line.quantity for line in lines})
            return state, [
                cause.command(state.order_id, "reserve", sku,
                              c.ReserveStock(order_id=state.order_id, quantity=quantity))
                for sku, quantity in state.lines.items()
            ]
        case e.StockReserved(unit_price=price) if state:
            if message.aggregate_id in state.reserved:
                return state, []
            return _reserved(state, message.aggregate_id, price, cause)
        case e.StockReservationRejected(quantity=wanted, available=available):
            reason = f"{message.aggregate_id}: {wanted} wanted, {available} available"
            return _unreservable(state, message.aggregate_id, reason, cause)
        case e.OrderCancelled() if state and state.outcome in ("reserving", "confirmed"):
            state = state.model_copy(update={"outcome": "cancelled"})
            return state, [_release(state, sku, cause) for sku in state.reserved]
        case e.OrderShipped() if state and state.outcome == "confirmed":
            state = state.model_copy(update={"outcome": "shipped"})
            return state, [_dispatch(state, sku, cause) for sku in state.reserved]
    return state, []


@dataclass(frozen=True)
class _Cause:
    correlation_id: UUID | None
    at: datetime

    def command(self, order_id: str, step: str, aggregate_id: str, payload: Message) -> Command:
        return Command(
            command_id=uuid5(SAGA_NAMESPACE, f"{order_id}/{step}/{aggregate_id}"),
            type=type(payload).__name__,
            aggregate_id=aggregate_id,
            correlation_id=self.correlation_id,
            reply_to=order_id,
            issued_at=self.at,
            payload=payload,
        )


def _reserved(state: Reservation, sku: str, unit_price: Decimal,
              cause: _Cause) -> tuple[Reservation, list[Command]]:
    state = state.model_copy(update={"reserved": {**state.reserved, sku: unit_price}})
    if state.outcome != "reserving":
        return state, [_release(state, sku, cause)]
    if set(state.reserved) != set(state.lines):
        return state, []
    lines = [c.PricedLine(sku=sku, quantity=quantity, unit_price=state.reserved[sku])
             for sku, quantity in state.lines.items()]
    total = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    state = state.model_copy(update={"outcome": "confirmed"})
    return state, [cause.command(state.order_id, "confirm", state.order_id,
                                 c.ConfirmOrder(lines=lines, total=total))]


def _unreservable(state: Reservation | None, sku: str, reason: str,
                  cause: _Cause) -> tuple[Reservation | None, list[Command]]:
    if state is None or sku in state.rejected:
        return state, []
    state = state.model_copy(update={"rejected": [*state.rejected, sku]})
    if state.outcome != "reserving":
        return state, []
    state = state.model_copy(update={"outcome": "rejected"})
    reject = cause.command(state.order_id, "reject", state.order_id,
                           c.RejectOrder(reason=f"cannot reserve {reason}"))
    return state, [reject, *(_release(state, sku, cause) for sku in state.reserved)]


def _release(state: Reservation, sku: str, cause: _Cause) -> Command:
    payload = c.ReleaseStock(order_id=state.order_id, quantity=state.lines[sku])
    return cause.command(state.order_id, "release", sku, payload)


def _dispatch(state: Reservation, sku: str, cause: _Cause) -> Command:
    payload = c.DispatchStock(order_id=state.order_id, quantity=state.lines[sku])
    return cause.command(state.order_id, "dispatch", sku, payload)
