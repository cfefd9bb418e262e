"""Views as folds of the event log: redelivery changes nothing, and versions have no gaps."""

from decimal import Decimal
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import commands as c
from streams.envelopes import Command
from tables.fold import fold, version_problems
from tests.unit.memory_system import AT, MemorySystem

SKUS = ["sku-a", "sku-b"]


def command(aggregate_id: str, payload: c.Message) -> Command:
    return Command(command_id=uuid4(), type=type(payload).__name__, aggregate_id=aggregate_id,
                   issued_at=AT, payload=payload)


def run(orders: list[tuple[str, dict[str, int]]], stock: int) -> MemorySystem:
    system = MemorySystem()
    for sku in SKUS:
        system.submit(command(sku, c.RegisterProduct(name=sku, price=Decimal("1.25"), stock=stock)))
    for n, (customer, lines) in enumerate(orders):
        system.submit(command(f"o{n}", c.PlaceOrder(customer_id=customer, lines=[
            c.OrderLine(sku=sku, quantity=q) for sku, q in lines.items()])))
    return system


scenarios = st.tuples(
    st.lists(st.tuples(st.sampled_from(["cust-1", "cust-2"]),
                       st.dictionaries(st.sampled_from(SKUS), st.integers(1, 3), min_size=1)),
             max_size=10),
    st.integers(0, 8),
)


@settings(max_examples=40)
@given(scenarios, st.randoms())
def test_redelivering_any_events_leaves_every_view_unchanged(scenario, random) -> None:  # type: ignore[no-untyped-def]
    log = run(*scenario).log
    redelivered = list(log)
    for _ in range(len(log) // 2):
        start = random.randrange(len(log))
        position = redelivered.index(log[start]) + 1
        redelivered[position:position] = log[start:start + 3]
    assert fold(redelivered) == fold(log)
    assert version_problems(redelivered) == []


@given(scenarios)
def test_the_views_agree_with_the_aggregates(scenario) -> None:  # type: ignore[no-untyped-def]
    system = run(*scenario)
    views = fold(system.log)
    for sku in SKUS:
        assert views["products"][sku]["data"]["available"] == system.state("product", sku).available
    for n in range(len(scenario[0])):
        order = system.state("order", f"o{n}")
        row = views["orders"][f"o{n}"]["data"]
        assert (row["status"], row["version"]) == (order.status, order.version)
        summaries = views["customer-orders"][order.customer_id]["data"]["orders"]
        listed = {summary["order_id"]: summary for summary in summaries}
        assert listed[f"o{n}"]["status"] == order.status


def test_a_gap_and_a_conflicting_version_are_both_reported() -> None:
    log = run([("cust-1", {"sku-a": 1})], 5).log
    order_events = [e for e in log if e.aggregate_id == "o0"]
    conflicting = order_events[0].model_copy(update={"event_id": uuid4()})
    problems = version_problems([order_events[1], conflicting, order_events[0]])
    assert problems == ["o0 has two events at version 1"]
    assert version_problems([order_events[1]]) == ["o0 has version gaps: [2]"]
