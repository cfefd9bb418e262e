"""List queries, pure: filters, the cursor, and merging partitions' pages into one."""

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.listing import (
    MAX_LIMIT,
    BadList,
    Data,
    Found,
    Query,
    decode_cursor,
    encode_cursor,
    merge,
    parse,
    ranked,
    select,
    totals,
)
from tables.orders import VIEW as ORDERS
from tables.products import VIEW as PRODUCTS
from tables.sales import VIEW as SALES

STATUSES = ["placed", "confirmed", "paid"]
LISTING = ORDERS.listing
assert LISTING is not None


def order(key: str, status: str, customer: str) -> Found:
    return key, {"order_id": key, "status": status, "customer_id": customer}


def page_through(partitions: list[list[Found]], wanted: dict[str, str | int],
                 limit: int) -> list[list[Found]]:
    """What a client gets following next cursors from the first page to the last."""
    assert LISTING is not None
    pages, cursor = [], None
    while True:
        query = Query(wanted, decode_cursor(cursor) if cursor else None, limit)
        rows, cursor = merge([select(sorted(part), LISTING, query) for part in partitions],
                             limit)
        pages.append(rows)
        if cursor is None:
            return pages


orders = st.lists(st.tuples(st.text(min_size=1, max_size=6), st.sampled_from(STATUSES),
                            st.sampled_from(["c1", "c2"])),
                  unique_by=lambda o: o[0], max_size=60)


@settings(max_examples=300)
@given(orders, st.integers(1, 4), st.integers(1, 12), st.sampled_from([None, *STATUSES]),
       st.sampled_from([None, "c1"]))
def test_paging_yields_the_filtered_set_in_order_without_duplicates(
    rows: list[tuple[str, str, str]], partitions: int, limit: int, status: str | None,
    customer: str | None,
) -> None:
    split: list[list[Found]] = [[] for _ in range(partitions)]
    for n, (key, state, who) in enumerate(rows):
        split[n % partitions].append(order(key, state, who))
    wanted: dict[str, str | int] = {k: v for k, v in
                                    (("status", status), ("customer_id", customer)) if v}
    pages = page_through(split, wanted, limit)
    seen = [key for page in pages for key, _ in page]
    expected = sorted(key for key, state, who in rows
                      if status in (None, state) and customer in (None, who))
    assert seen == expected
    assert all(len(page) == limit for page in pages[:-1])
    assert all(0 < len(page) <= limit for page in pages if seen)


def test_a_partition_with_more_rows_gets_a_cursor_even_when_the_page_is_exactly_full() -> None:
    query = Query({}, None, 2)
    assert LISTING is not None
    first = select([order("a", "paid", "c"), order("b", "paid", "c"), order("c", "paid", "c")],
                   LISTING, query)
    assert first == ([order("a", "paid", "c"), order("b", "paid", "c")], True)
    rows, cursor = merge([first, ([], False)], 2)
    assert [key for key, _ in rows] == ["a", "b"] and cursor is not None
    assert decode_cursor(cursor) == "b"
    assert merge([select([order("a", "paid", "c")], LISTING, query)], 2)[1] is None


@given(st.text(max_size=50))
def test_a_cursor_names_its_key(key: str) -> None:
    assert decode_cursor(encode_cursor(key)) == key


@pytest.mark.parametrize("cursor", ["", "%%%", "bm90IGpzb24", base64.b64encode(b"[1]").decode(),
                                    base64.urlsafe_b64encode(b'{"after": 3}').decode()])
def test_a_cursor_the_service_did_not_issue_is_refused(cursor: str) -> None:
    with pytest.raises(BadList, match="cursor"):
        decode_cursor(cursor)


@pytest.mark.parametrize(("params", "message"), [
    ({"status": "lost"}, "status must be one of"),
    ({"status": ""}, "status must be one of"),
    ({"customer_id": ""}, "customer_id must be 1 to"),
    ({"customer_id": "x" * 201}, "customer_id must be 1 to"),
    ({"limit": "0"}, "limit must be between"),
    ({"limit": str(MAX_LIMIT + 1)}, "limit must be between"),
    ({"limit": "ten"}, "limit must be an integer"),
    ({"cursor": "nope"}, "cursor"),
    ({"colour": "red"}, "unknown parameter 'colour'"),
])
def test_bad_parameters_say_which(params: dict[str, str], message: str) -> None:
    assert LISTING is not None
    with pytest.raises(BadList, match=message):
        parse(LISTING, params)


def test_products_filter_below_a_number() -> None:
    listing = PRODUCTS.listing
    assert listing is not None
    query = parse(listing, {"available_below": "5", "limit": "10"})
    rows: list[tuple[str, Data]] = [("a", {"available": 4}), ("b", {"available": 5}),
                                    ("c", {"available": -1})]
    assert [k for k, _ in select(rows, listing, query)[0]] == ["a", "c"]
    with pytest.raises(BadList, match="available_below must be an integer"):
        parse(listing, {"available_below": "few"})


def test_an_order_is_indexed_by_its_status_only_while_it_has_one() -> None:
    assert LISTING is not None
    assert LISTING.index_key({"status": "paid"}, "o/1") == "paid\0o/1"
    assert LISTING.index_key(None, "o/1") is None


def test_top_sums_each_key_over_its_windows_and_ranks_by_units_then_key() -> None:
    ranking = SALES.ranking
    assert ranking is not None
    hours: list[Data] = [{"sku": "a", "units": 2, "revenue": "5.00"},
                         {"sku": "b", "units": 3, "revenue": "3.00"},
                         {"sku": "a", "units": 1, "revenue": "2.50"},
                         {"sku": "c", "units": -1, "revenue": "-1.00"},
                         {"sku": "d", "units": 3, "revenue": "9.00"}]
    assert totals(hours, ranking) == [{"sku": "a", "units": 3, "revenue": "7.50"},
                                      {"sku": "b", "units": 3, "revenue": "3.00"},
                                      {"sku": "d", "units": 3, "revenue": "9.00"},
                                      {"sku": "c", "units": -1, "revenue": "-1.00"}]


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(-5, 50)), max_size=40),
       st.integers(1, 4), st.integers(1, 10))
def test_the_top_of_each_partitions_top_is_the_top(
    sales: list[tuple[str, int]], partitions: int, n: int,
) -> None:
    ranking = SALES.ranking
    assert ranking is not None
    hours = [{"sku": sku, "units": units, "revenue": "1.00"} for sku, units in sales]
    split = [[h for h in hours if "abcdefgh".index(h["sku"]) % partitions == p]
             for p in range(partitions)]
    merged = ranked([row for part in split for row in totals(part, ranking)[:n]], ranking, n)
    assert merged == totals(hours, ranking)[:n]
