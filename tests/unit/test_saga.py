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


def test_shipping_an_order_takes_its_units_off_hand_and_out_of_the_reservations() -> None:
    system = shop()
    place(system, "o1", sku_a=2, sku_b=1)
    system.submit(command("o1", c.PayOrder(amount=Decimal("7.50"))))
    system.submit(command("o1", c.ShipOrder()))
    assert system.sagas["o1"].outcome == "shipped"
    product = system.state("product", "sku-a")
    assert (product.on_hand, product.available, product.reservations) == (3, 3, {})
    dispatched = [event for event in system.log if event.type == "StockDispatched"]
    assert sorted(event.aggregate_id for event in dispatched) == ["sku-a", "sku-b"]


def test_stock_is_dispatched_once() -> None:
    system = shop()
    place(system, "o1", sku_a=2)
    system.submit(command("o1", c.PayOrder(amount=Decimal("5.00"))))
    system.submit(command("o1", c.ShipOrder()))
    again = command("sku-a", c.DispatchStock(order_id="o1", quantity=2))
    system.submit(again)
    assert system.results[str(again.command_id)].reason == "no stock is reserved for order o1"
    assert system.state("product", "sku-a").on_hand == 3


orders = st.lists(
    st.dictionaries(st.sampled_from(["sku_a", "sku_b", "sku_c", "sku_z"]), st.integers(1, 4),
                    min_size=1, max_size=3),
    min_size=1, max_size=12,
)


@settings(max_examples=60)
@given(orders, st.lists(st.integers(0, 11), max_size=6), st.lists(st.integers(0, 11), max_size=6),
       st.integers(0, 6))
def test_every_order_ends_confirmed_or_rejected_and_stock_adds_up(
    placed: list[dict[str, int]], cancelled: list[int], shipped: list[int], stock: int,
) -> None:
    system = shop(stock)
    for n, lines in enumerate(placed):
        place(system, f"o{n}", **lines)
    for n in shipped:
        order = system.state("order", f"o{n}")
        if order is not None and order.status == "confirmed":
            system.submit(command(f"o{n}", c.PayOrder(amount=order.total)))
            system.submit(command(f"o{n}", c.ShipOrder()))
    for n in cancelled:
        if n < len(placed):
            system.submit(command(f"o{n}", c.CancelOrder(reason="")))
    held: dict[str, int] = {sku: 0 for sku in SKUS}
    gone: dict[str, int] = {sku: 0 for sku in SKUS}
    for n in range(len(placed)):
        order = system.state("order", f"o{n}")
        assert order.status in ("confirmed", "rejected", "cancelled", "shipped")
        for line in order.priced if order.status in ("confirmed", "shipped") else ():
            (held if order.status == "confirmed" else gone)[line.sku] += line.quantity
    for sku in SKUS:
        product = system.state("product", sku)
        assert product.on_hand == stock - gone[sku]
        assert product.available == stock - gone[sku] - held[sku] >= 0
        assert len(product.reservations) == sum(
            1 for n in range(len(placed)) if system.state("order", f"o{n}").status == "confirmed"
            and sku in {line.sku for line in system.state("order", f"o{n}").priced})
