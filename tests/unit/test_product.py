"""The Product decider and evolver: stock never goes negative."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.product import Product, decide, evolve
from domain.rejection import Rejected
from streams import commands as c
from streams import events as e

REGISTERED = e.ProductRegistered(name="Mug", price=Decimal("4.50"), stock=3)


def test_reserving_what_is_available_reserves_it_at_the_current_price() -> None:
    product = evolve(None, REGISTERED)
    assert decide(product, c.ReserveStock(order_id="o1", quantity=3)) == [
        e.StockReserved(order_id="o1", quantity=3, unit_price=Decimal("4.50"))
    ]


def test_reserving_more_than_is_available_is_a_rejected_reservation() -> None:
    product = evolve(evolve(None, REGISTERED), e.StockReserved(
        order_id="o1", quantity=2, unit_price=Decimal("4.50")))
    assert product.available == 1
    assert decide(product, c.ReserveStock(order_id="o2", quantity=2)) == [
        e.StockReservationRejected(order_id="o2", quantity=2, available=1)
    ]


def test_release_returns_the_reserved_units() -> None:
    product = evolve(evolve(None, REGISTERED), e.StockReserved(
        order_id="o1", quantity=2, unit_price=Decimal("4.50")))
    [released] = decide(product, c.ReleaseStock(order_id="o1", quantity=2))
    assert evolve(product, released).available == 3


def test_dispatch_takes_the_reserved_units_off_hand_and_forgets_the_reservation() -> None:
    product = evolve(evolve(None, REGISTERED), e.StockReserved(
        order_id="o1", quantity=2, unit_price=Decimal("4.50")))
    [dispatched] = decide(product, c.DispatchStock(order_id="o1", quantity=2))
    assert dispatched == e.StockDispatched(order_id="o1", quantity=2)
    after = evolve(product, dispatched)
    assert (after.on_hand, after.available, after.reservations) == (1, 1, {})
    with pytest.raises(Rejected, match="no stock is reserved for order o1"):
        decide(after, c.DispatchStock(order_id="o1", quantity=2))


def test_release_without_a_reservation_is_rejected() -> None:
    with pytest.raises(Rejected, match="no stock is reserved"):
        decide(evolve(None, REGISTERED), c.ReleaseStock(order_id="o9", quantity=1))


product_commands = st.one_of(
    st.builds(c.Restock, quantity=st.integers(1, 5)),
    st.builds(c.ReserveStock, order_id=st.sampled_from(["o1", "o2", "o3", "o4"]),
              quantity=st.integers(1, 6)),
    st.builds(c.ReleaseStock, order_id=st.sampled_from(["o1", "o2", "o3", "o4"]),
              quantity=st.integers(1, 6)),
)


@given(st.lists(product_commands, max_size=40))
def test_stock_never_goes_negative(commands: list[c.Message]) -> None:
    product: Product = evolve(None, REGISTERED)
    for command in commands:
        try:
            events = decide(product, command)
        except Rejected:
            continue
        for event in events:
            product = evolve(product, event)
        assert product.available >= 0
        assert all(quantity > 0 for quantity in product.reservations.values())
