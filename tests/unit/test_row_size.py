"""A row too large for one changelog record is refused before it is stored or sent."""

import orjson
import pytest

from streams import events as e
from tables import customer_orders
from tables.view import MAX_ROW_BYTES, Data, RowTooLarge, apply, encode_row, encode_rows
from tests.unit.test_orders_view import LINES, envelope


def customer_row(orders: int) -> Data:
    row = None
    for n in range(orders):
        placed = envelope(e.OrderPlaced(channel="web", customer_id="cust-1", lines=LINES), 1,
                          order_id=f"order-{n:06d}")
        row = apply(customer_orders.VIEW, row, placed, "cust-1")
    assert row is not None
    return row


def test_a_row_that_fits_is_encoded_as_json() -> None:
    row = customer_row(3)
    assert orjson.loads(encode_row(customer_orders.VIEW, "cust-1", row)) == row


def test_a_customer_with_thousands_of_orders_outgrows_one_changelog_record() -> None:
    row = customer_row(6_000)
    with pytest.raises(RowTooLarge) as refused:
        encode_row(customer_orders.VIEW, "cust-1", row)
    assert "customer-orders-v1 row 'cust-1' would be" in str(refused.value)
    assert f"over the {MAX_ROW_BYTES:,}" in str(refused.value)


def test_rows_too_large_are_named_and_the_others_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = customer_row(1), customer_row(20)
    monkeypatch.setattr("tables.view.MAX_ROW_BYTES", len(orjson.dumps(small)))
    encoded, refused = encode_rows(customer_orders.VIEW, {"cust-1": small, "cust-2": large})
    assert list(encoded) == ["cust-1"] and refused == ["cust-2"]
