"""A version built through a repartition topic: a batch forwarded twice (a crash between
forwarding and committing) folds to the same customer rows, and its position along the event
log is the least any of its repartition partitions has folded; made resident, the gap folded
past both of its ends folds every event once."""

from agents.repartitioned_promotion import rows_reach
from agents.version_repartition import decode_reached, encode_reached, folded_positions
from streams.envelopes import Event
from tables.customer_orders import VIEW
from tables.view import Data, apply
from tests.unit.test_orders_view import HISTORY, envelope


def fold(forwarded: list[Event], row: Data | None = None) -> Data | None:
    for event in forwarded:
        row = apply(VIEW, row, event, "cust-1") or row
    return row


def test_a_batch_forwarded_again_folds_to_the_same_customer_row() -> None:
    order_a = [envelope(payload, n, "order-a") for n, payload in enumerate(HISTORY, 1)]
    order_b = [envelope(payload, n, "order-b") for n, payload in enumerate(HISTORY[:2], 1)]
    once = [order_a[0], order_b[0], order_a[1], order_a[2], order_b[1], order_a[3]]
    # Source partition of order-a forwarded a batch of a1, a2, a3, crashed before committing
    # and forwarded it again, after records of order-b's partition and before a4.
    again = [order_a[0], order_b[0], order_a[1], order_a[2], order_b[1],
             order_a[0], order_a[1], order_a[2], order_a[3]]
    assert fold(again) == fold(once)
    row = fold(once)
    assert row is not None
    assert row["versions"] == {"order-a": 4, "order-b": 2}
    assert [s["status"] for s in row["data"]["orders"]] == ["confirmed", "shipped"]


def test_the_position_is_the_least_over_the_repartition_partitions() -> None:
    reached = {0: {0: 9, 1: 4}, 1: {0: 7, 1: 4}, 2: {0: 9}}
    assert folded_positions(reached, [0, 1, 2]) == {0: 8, 1: 0, 2: 0}
    assert folded_positions({}, [0]) == {0: 0}


def test_reached_round_trips_through_commit_metadata() -> None:
    assert decode_reached(encode_reached({3: 10, 0: 2})) == {0: 2, 3: 10}
    assert decode_reached("") == {} and decode_reached(None) == {}
    assert decode_reached("not json") == {}


def test_made_resident_the_gap_past_both_ends_folds_every_event_once() -> None:
    """The build's rows reach `built`; the gap is folded from `start` (the least over the
    repartition partitions owned, so at most `built`) up to the app group's offset read then,
    `end`; the resident agent folds what was forwarded from `forwarded` on (at most `end`)."""
    order_a = [envelope(payload, n, "order-a") for n, payload in enumerate(HISTORY, 1)]
    order_b = [envelope(payload, n, "order-b") for n, payload in enumerate(HISTORY[:3], 1)]
    log = [order_a[0], order_b[0], order_a[1], order_b[1], order_a[2], order_b[2], order_a[3]]
    whole = fold(log)
    for built in range(len(log) + 1):
        for start in range(built + 1):
            for end in range(len(log) + 1):
                for forwarded in range(max(built, end) + 1):
                    row = fold(log[forwarded:], fold(log[start:end], fold(log[:built])))
                    assert row == whole, (built, start, end, forwarded)
    # Forwarding that began past the gap's end would lose what is in between.
    assert fold(log[7:], fold(log[0:6])) != whole


def test_made_resident_the_rows_reach_the_build_or_the_app_group_whichever_is_further() -> None:
    assert rows_reach({0: 9, 1: 1}, {0: 5, 1: 3, 2: 0}) == {0: 9, 1: 2}
