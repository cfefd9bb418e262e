"""The pipeline benchmark's own logic: its messages keep the contract, its figures add up."""

import orjson

from bench.latency import Visibility
from bench.pipeline_tools import command, event, judged, percentiles, product
from bench.reads import Ingest, check
from streams.envelopes import parse_command, parse_event


def test_the_messages_it_produces_keep_the_contract() -> None:
    registered = parse_event(orjson.dumps(event("ProductRegistered", "sku-1", 1, product("x"))))
    added = parse_event(orjson.dumps(event("StockAdded", "sku-1", 2, {"quantity": 1})))
    restock = parse_command(orjson.dumps(command("Restock", "sku-1", {"quantity": 1})))
    assert (registered.version, added.version, restock.aggregate_id) == (1, 2, "sku-1")
    assert registered.event_id != added.event_id


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    figures = percentiles([n / 1000 for n in range(1, 101)])
    assert figures == {"count": 100, "p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0,
                       "max_ms": 100.0}
    assert percentiles([])["p99_ms"] is None


def test_a_row_version_resolves_every_command_up_to_it() -> None:
    visibility = Visibility("127.0.0.1:1", "changelog")
    for version, scheduled in ((2, 10.0), (3, 10.5), (4, 11.0)):
        visibility.expect("sku-1", version, scheduled)
    row = {"data": {}, "versions": {"sku-1": 3}, "occurred_at": ""}
    visibility.seen(b"sku-1", orjson.dumps(row), 12.0)
    visibility.seen(b"sku-2", orjson.dumps(row), 12.0)
    assert (visibility.latencies, visibility.waiting) == ([2.0, 1.5], 1)


def test_a_read_is_checked_for_status_row_and_owner() -> None:
    body = orjson.dumps({"data": {"sku": "a", "on_hand": 3},
                         "meta": {"served_by": "http://w1/"}})
    assert check("a", 200, body, [3, "http://w1"]) is None
    assert check("a", 200, body, [4, "http://w1"]) is not None
    assert check("a", 200, body, [3, "http://w2"]) is not None
    assert check("a", 503, b"{}", [3, "http://w1"]) is not None


def test_verify_fails_on_any_difference_but_those_the_bench_made_itself() -> None:
    made = "product-state/ingest-00007: stored nothing, the log folds to {'version': 3}"
    real = "product-state/sku-00007: stored nothing, the log folds to {'version': 3}"
    summary = "9 events (0 unreadable, 0 not foldable where they stand), 1 differences"
    assert judged(1, [made, summary], "", Ingest.unrecorded) == {
        "ok": True, "summary": summary, "differences": [], "expected_differences": 1}
    assert not judged(1, [made, real, summary], "", Ingest.unrecorded)["ok"]
    assert not judged(1, [], "Traceback ...", Ingest.unrecorded)["ok"]
    assert judged(0, [summary], "", Ingest.unrecorded)["ok"]

