"""The reservation saga: confirm when all lines are reserved, reject and compensate otherwise."""

from decimal import Decimal
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from streams import commands as c
from streams.commands import Message
from streams.envelopes import Command
from tests.unit.memory_system import AT, MemorySystem

SKUS = ["sku-a", "sku-b", "sku-c"]


def command(aggregate_id: str, payload: Message) -> Command:
    return Command(command_id=uuid4(), type=type(payload).__name__, aggregate_id=aggregate_id,
                   issued_at=AT, payload=payload)


def shop(stock: int = 5) -> MemorySystem:
    system = MemorySystem()
    for sku in SKUS:
        system.submit(command(sku, c.RegisterProduct(name=sku, price=Decimal("2.50"),
                                                     stock=stock)))
    return system


def place(system: MemorySystem, order_id: str, **quantities: int) -> None:
    lines = [c.OrderLine(sku=sku.replace("_", "-"), quantity=q) for sku, q in quantities.items()]
    system.submit(command(order_id, c.PlaceOrder(customer_id="cust-1", lines=lines)))


def test_an_order_that_fits_is_confirmed_at_the_reserved_prices() -> None:
    system = shop()
    place(system, "o1", sku_a=2, sku_b=1)
    order = system.state("order", "o1")
    assert (order.status, order.total) == ("confirmed", Decimal("7.50"))
    assert system.state("product", "sku-a").available == 3


def test_an_order_that_does_not_fit_is_rejected_and_its_reservations_released() -> None:
    system = shop()
    place(system, "o1", sku_a=2, sku_b=6)
    order = system.state("order", "o1")
    assert order.status == "rejected"
    assert [p.available for p in (system.state("product", s) for s in SKUS)] == [5, 5, 5]


def test_an_unknown_sku_rejects_the_order() -> None:
    system = shop()
    place(system, "o1", sku_a=1, sku_z=1)
    assert system.state("order", "o1").status == "rejected"
    assert system.state("product", "sku-a").available == 5


def test_cancelling_a_confirmed_order_releases_its_stock() -> None:
    system = shop()
    place(system, "o1", sku_a=4)
    system.submit(command("o1", c.CancelOrder(reason="no longer needed")))
    assert system.state("order", "o1").status == "cancelled"
    assert system.state("product", "sku-a").available == 5


orders = st.lists(
    st.dictionaries(st.sampled_from(["sku_a", "sku_b", "sku_c", "sku_z"]), st.integers(1, 4),
                    min_size=1, max_size=3),
    min_size=1, max_size=12,
)


@settings(max_examples=60)
@given(orders, st.lists(st.integers(0, 11), max_size=6), st.integers(0, 6))
def test_every_order_ends_confirmed_or_rejected_and_stock_adds_up(
    placed: list[dict[str, int]], cancelled: list[int], stock: int,
) -> None:
    system = shop(stock)
    for n, lines in enumerate(placed):
        place(system, f"o{n}", **lines)
    for n in cancelled:
        if n < len(placed):
            system.submit(command(f"o{n}", c.CancelOrder(reason="")))
    held: dict[str, int] = {sku: 0 for sku in SKUS}
    for n in range(len(placed)):
        order = system.state("order", f"o{n}")
        assert order.status in ("confirmed", "rejected", "cancelled")
        if order.status == "confirmed":
            for line in order.priced:
                held[line.sku] += line.quantity
    for sku in SKUS:
        product = system.state("product", sku)
        assert product.available == stock - held[sku] >= 0
