"""The Order decider and evolver, with no app and no await."""

from decimal import Decimal

import pytest

from domain.order import Order, decide, evolve
from domain.rejection import Rejected
from streams import commands as c
from streams import events as e

LINES = [c.OrderLine(sku="sku-1", quantity=2), c.OrderLine(sku="sku-2", quantity=1)]
PRICED = [
    c.PricedLine(sku="sku-1", quantity=2, unit_price=Decimal("5.00")),
    c.PricedLine(sku="sku-2", quantity=1, unit_price=Decimal("9.99")),
]


def fold(*events: e.Message) -> Order:
    state = None
    for event in events:
        state = evolve(state, event)
    assert state is not None
    return state


def test_place_order_emits_order_placed() -> None:
    assert decide(None, c.PlaceOrder(customer_id="cust-1", lines=LINES)) == [
        e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES)
    ]


def test_an_order_is_placed_once() -> None:
    placed = fold(e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES))
    with pytest.raises(Rejected, match="already exists"):
        decide(placed, c.PlaceOrder(customer_id="cust-1", lines=LINES))


def test_a_sku_appears_on_one_line_only() -> None:
    lines = [c.OrderLine(sku="sku-1", quantity=1), c.OrderLine(sku="sku-1", quantity=2)]
    with pytest.raises(Rejected, match="one line"):
        decide(None, c.PlaceOrder(customer_id="cust-1", lines=lines))


def test_evolve_counts_versions_and_tracks_status() -> None:
    order = fold(
        e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES),
        e.OrderConfirmed(customer_id="cust-1", lines=PRICED, total=Decimal("19.99")),
        e.OrderPaid(customer_id="cust-1", amount=Decimal("19.99")),
    )
    assert (order.status, order.version, order.total) == ("paid", 3, Decimal("19.99"))


def test_confirm_checks_the_total_against_the_lines() -> None:
    placed = fold(e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES))
    with pytest.raises(Rejected, match="does not match"):
        decide(placed, c.ConfirmOrder(lines=PRICED, total=Decimal("20.00")))


@pytest.mark.parametrize("lines", [
    PRICED[:1],
    [*PRICED, c.PricedLine(sku="sku-3", quantity=1, unit_price=Decimal("1.00"))],
    [PRICED[0], c.PricedLine(sku="sku-2", quantity=5, unit_price=Decimal("9.99"))],
    [PRICED[0], c.PricedLine(sku="sku-9", quantity=1, unit_price=Decimal("9.99"))],
])
def test_a_confirmation_carries_exactly_the_placed_lines(lines: list[c.PricedLine]) -> None:
    placed = fold(e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES))
    total = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    with pytest.raises(Rejected, match="must be the placed lines"):
        decide(placed, c.ConfirmOrder(lines=lines, total=total))
    assert decide(placed, c.ConfirmOrder(lines=PRICED[::-1], total=Decimal("19.99"))) == [
        e.OrderConfirmed(customer_id="cust-1", lines=PRICED[::-1], total=Decimal("19.99"))]


def test_an_order_is_paid_for_its_exact_total() -> None:
    confirmed = fold(
        e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES),
        e.OrderConfirmed(customer_id="cust-1", lines=PRICED, total=Decimal("19.99")),
    )
    with pytest.raises(Rejected, match="does not equal"):
        decide(confirmed, c.PayOrder(amount=Decimal("19.98")))
    assert decide(confirmed, c.PayOrder(amount=Decimal("19.99"))) == [
        e.OrderPaid(customer_id="cust-1", amount=Decimal("19.99"))
    ]


def test_only_a_paid_order_ships() -> None:
    placed = fold(e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES))
    with pytest.raises(Rejected, match="cannot ship a placed order"):
        decide(placed, c.ShipOrder())


def test_a_shipped_order_cannot_be_cancelled() -> None:
    shipped = fold(
        e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES),
        e.OrderConfirmed(customer_id="cust-1", lines=PRICED, total=Decimal("19.99")),
        e.OrderPaid(customer_id="cust-1", amount=Decimal("19.99")),
        e.OrderShipped(customer_id="cust-1"),
    )
    with pytest.raises(Rejected, match="shipped order cannot be cancelled"):
        decide(shipped, c.CancelOrder(reason="changed my mind"))


def test_commands_for_a_missing_order_are_rejected() -> None:
    with pytest.raises(Rejected, match="no such order"):
        decide(None, c.ShipOrder())
