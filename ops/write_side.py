"""`verify`'s write side, pure: the aggregates' and the saga's stored states against the fold
of their logs, and the views against the aggregates they reflect."""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from domain.aggregates import AGGREGATES, aggregate_of
from domain.rejection import Rejected
from domain.saga import Input, Reservation, react
from streams.envelopes import Event, utc_now
from tables.view import Data

SAGA_INPUT: TypeAdapter[Input] = TypeAdapter(Input)
STATES = {aggregate.kind: aggregate.state for aggregate in AGGREGATES}


def fold_aggregates(events: Iterable[Event],
                    unfoldable: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each aggregate's state, by kind and id, as the evolvers fold the log; a repeated event
    is skipped (its version is already applied), as is one that cannot apply where it stands."""
    states: dict[str, dict[str, Any]] = {kind: {} for kind in STATES}
    for event in events:
        aggregate = aggregate_of(event.payload)
        found = states[aggregate.kind]
        state = found.get(event.aggregate_id)
        if event.version != (state.version if state is not None else 0) + 1:
            continue
        try:
            found[event.aggregate_id] = aggregate.evolve(state, event.payload)
        except (ValueError, Rejected) as exc:
            if unfoldable is not None:
                unfoldable.append(f"{aggregate.kind} {event.aggregate_id} cannot apply "
                                  f"{event.event_id}: {exc}")
    return states


def fold_saga(inputs: Iterable[tuple[bytes | None, bytes]]) -> dict[str, Reservation]:
    """Each order's reservation as `react` folds the saga's input topic, in its order."""
    states: dict[str, Reservation] = {}
    for key, value in inputs:
        if key is None:
            continue
        try:
            message = SAGA_INPUT.validate_json(value)
            state, _ = react(states.get(key.decode()), message, utc_now())
        except (ValidationError, ValueError, UnicodeDecodeError):
            continue  # the saga parks what it cannot read or step
        if state is not None:
            states[key.decode()] = state
    return states


def latest(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, bytes]:
    """A compacted changelog's current content: the last value per key, tombstones removed."""
    found: dict[str, bytes] = {}
    for key, value in records:
        if key is None:
            continue
        if value is None:
            found.pop(key.decode(), None)
        else:
            found[key.decode()] = value
    return found


def state_differences(label: str, model: type[BaseModel], expected: dict[str, BaseModel],
                      stored: dict[str, bytes]) -> list[str]:
    """Where a table's stored states differ from the fold, naming the key and the fields."""
    found = []
    for key in sorted(set(expected) | set(stored)):
        want = expected[key].model_dump(mode="json") if key in expected else None
        have: Data | None = None
        if key in stored:
            try:
                have = model.model_validate_json(stored[key]).model_dump(mode="json")
            except ValidationError as exc:
                found.append(f"{label}/{key}: the stored state is unreadable: {exc}")
                continue
        found += field_differences(f"{label}/{key}", have, want, "stored", "the log folds to")
    return found


def field_differences(where: str, have: Data | None, want: Data | None, have_name: str,
                      want_name: str) -> list[str]:
    """One line per field that differs (or one for a row that only one side has)."""
    if have is None or want is None:
        if have == want:
            return []
        return [f"{where}: {have_name} {'nothing' if have is None else have}, "
                f"{want_name} {'nothing' if want is None else want}"]
    return [f"{where}: {field} {have_name} {have.get(field)!r}, {want_name} {want.get(field)!r}"
            for field in sorted(set(have) | set(want)) if have.get(field) != want.get(field)]


def views_against_aggregates(views: dict[str, dict[str, Data]],
                             states: dict[str, dict[str, Any]]) -> list[str]:
    """Whether the orders and products views say what the aggregates hold, key by key."""
    found = []
    for key in sorted(set(views["orders"]) | set(states["order"])):
        row = views["orders"].get(key)
        order = states["order"].get(key)
        found += field_differences(f"orders/{key}", _order_view(row["data"]) if row else None,
                                   _order(order) if order else None, "the view says",
                                   "the order aggregate holds")
    for key in sorted(set(views["products"]) | set(states["product"])):
        row = views["products"].get(key)
        product = states["product"].get(key)
        found += field_differences(f"products/{key}",
                                   _product_view(row["data"]) if row else None,
                                   _product(product) if product else None, "the view says",
                                   "the product aggregate holds")
    return found


def _order_view(data: Data) -> Data:
    total = data["total"]
    return {"status": data["status"], "customer_id": data["customer_id"],
            "version": data["version"], "total": None if total is None else Decimal(total),
            "lines": data["lines"]}


def _order(order: Any) -> Data:
    lines = order.priced or order.lines
    return {"status": order.status, "customer_id": order.customer_id, "version": order.version,
            "total": order.total, "lines": [line.model_dump(mode="json") for line in lines]}


def _product_view(data: Data) -> Data:
    return {"name": data["name"], "price": Decimal(data["price"]), "on_hand": data["on_hand"],
            "reserved": data["reserved"], "version": data["version"]}


def _product(product: Any) -> Data:
    return {"name": product.name, "price": product.price, "on_hand": product.on_hand,
            "reserved": sum(product.reservations.values()), "version": product.version}
