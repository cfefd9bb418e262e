"""verify's write side: the aggregates and the saga folded from their logs equal what the
handlers stored, the views agree with the aggregates, and a planted difference is named."""

from decimal import Decimal
from typing import Any

from hypothesis import given, settings

from domain.saga import order_of
from ops.write_side import (
    field_differences,
    fold_aggregates,
    fold_saga,
    latest,
    state_differences,
    views_against_aggregates,
)
from streams import commands as c
from streams.envelopes import CommandResult, Event, encode
from tables.fold import fold
from tests.unit.memory_system import MemorySystem
from tests.unit.test_fold import command, run, scenarios


class Recording(MemorySystem):
    """The memory system, keeping the saga's inputs as its topic would carry them."""

    def __init__(self) -> None:
        super().__init__()
        self.saga_inputs: list[tuple[bytes | None, bytes]] = []

    def _to_saga(self, message: Event | CommandResult) -> None:
        order_id = order_of(message)
        if order_id is not None:
            self.saga_inputs.append((order_id.encode(), encode(message)))
        super()._to_saga(message)


def stored(system: MemorySystem, kind: str) -> dict[str, bytes]:
    return {key: encode(state) for (k, key), state in system.states.items() if k == kind}


@settings(max_examples=30)
@given(scenarios)
def test_the_folds_equal_what_the_handlers_stored(scenario) -> None:  # type: ignore[no-untyped-def]
    system = run(*scenario)
    states = fold_aggregates(system.log)
    for kind in ("order", "product"):
        assert states[kind] == {key: s for (k, key), s in system.states.items() if k == kind}
        model = type(next(iter(states[kind].values()))) if states[kind] else None
        if model is not None:
            assert state_differences(kind, model, states[kind], stored(system, kind)) == []
    assert views_against_aggregates(fold(system.log), states) == []
    assert fold_aggregates(system.log + system.log[::2]) == states  # redelivery changes nothing


def test_the_saga_folded_from_its_inputs_equals_its_state() -> None:
    system = Recording()
    for sku, stock in (("sku-a", 5), ("sku-b", 1)):
        system.submit(command(sku, c.RegisterProduct(name=sku, price=Decimal("2.50"),
                                                     stock=stock)))
    for n, lines in enumerate([{"sku-a": 2}, {"sku-a": 1, "sku-b": 2}, {"nope": 1}]):
        system.submit(command(f"o{n}", c.PlaceOrder(customer_id="c", lines=[
            c.OrderLine(sku=sku, quantity=q) for sku, q in lines.items()])))
    system.submit(command("o0", c.CancelOrder(reason="no")))
    assert [s.outcome for s in system.sagas.values()] == ["cancelled", "rejected", "rejected"]
    assert fold_saga(system.saga_inputs) == system.sagas


def test_a_planted_wrong_state_is_named_by_key_and_field() -> None:
    system = run([("cust-1", {"sku-a": 1})], 5)
    states = fold_aggregates(system.log)
    planted = stored(system, "order")
    order: Any = states["order"]["o0"]
    planted["o0"] = encode(order.model_copy(update={"status": "paid"}))
    planted["ghost"] = planted["o0"]
    found = state_differences("order-state", type(order), states["order"], planted)
    assert found == [
        "order-state/ghost: stored " + str(order.model_copy(update={"status": "paid"})
                                           .model_dump(mode="json")) + ", the log folds to nothing",
        "order-state/o0: status stored 'paid', the log folds to 'confirmed'",
    ]


def test_a_view_that_disagrees_with_its_aggregate_is_named() -> None:
    system = run([("cust-1", {"sku-a": 1})], 5)
    views = fold(system.log)
    views["products"]["sku-a"]["data"]["reserved"] = 0
    assert views_against_aggregates(views, fold_aggregates(system.log)) == [
        "products/sku-a: reserved the view says 0, the product aggregate holds 1"]


def test_latest_keeps_the_last_value_and_honours_tombstones() -> None:
    assert latest([(b"a", b"1"), (b"b", b"2"), (b"a", b"3"), (b"b", None), (None, b"x")]) == {
        "a": b"3"}
    assert field_differences("k", {"x": 1}, {"x": 1}, "have", "want") == []
