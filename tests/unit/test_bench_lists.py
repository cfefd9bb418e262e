"""The list benchmark's data and its check against the fold."""

from collections import defaultdict

from bench.lists import CONFIRMED_SHARE, PRODUCTS, check, history, orders
from domain.saga import Reservation


def test_the_orders_come_after_products_with_stock_for_most_of_them() -> None:
    commands = orders(100)
    kinds = [command["type"] for _, command in commands]
    assert kinds == ["RegisterProduct"] * PRODUCTS + ["PlaceOrder"] * 100
    stock = sum(command["payload"]["stock"] for _, command in commands[:PRODUCTS])
    assert stock == 100 * CONFIRMED_SHARE
    assert all(key == command["aggregate_id"] for key, command in commands)


def test_the_check_finds_missing_duplicated_and_misordered_rows() -> None:
    folded = {f"o{n}": {"order_id": f"o{n}", "status": "confirmed"} for n in range(3)}
    rows = [folded["o0"], folded["o1"], folded["o2"]]
    assert check({"confirmed": rows}, folded) == []
    assert check({"confirmed": rows[:2]}, folded) == ["confirmed: served 2 rows, the fold has 3"]
    assert "served twice" in check({"confirmed": [*rows, rows[0]]}, folded)[0]
    assert check({"confirmed": rows[::-1]}, folded) == [
        "confirmed: the fold's rows, out of key order or changed"]


def test_the_history_is_the_log_the_pipeline_writes_and_the_saga_has_finished() -> None:
    events, sagas = history(200)
    versions: dict[str, list[int]] = defaultdict(list)
    for event in events:
        versions[event.aggregate_id].append(event.version)
    assert all(seen == list(range(1, len(seen) + 1)) for seen in versions.values())
    ends = {e.aggregate_id: e.type for e in events if e.aggregate_id.startswith("order-")}
    assert len(ends) == 200 and set(ends.values()) == {"OrderConfirmed", "OrderRejected"}
    confirmed = sum(kind == "OrderConfirmed" for kind in ends.values())
    assert confirmed <= 200 * CONFIRMED_SHARE
    outcomes = {order: Reservation.model_validate_json(state).outcome
                for order, state in sagas.items()}
    assert outcomes == {order: "confirmed" if kind == "OrderConfirmed" else "rejected"
                        for order, kind in ends.items()}
