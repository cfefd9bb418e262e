"""`python -m bench.store_progress`: what reading a row's progress costs a standby, per row.

A standby applying a changelog record reads the progress of the row it replaces and of the
record (`streams.store.is_behind`). Rows as the workers write them now (progress first) are
timed against the same rows laid out as before (progress last, parsed whole), in one process:
a product's and an order's state, an order's view row and a customer's orders with 1, 50 and
400 orders (the HTTP soak's customers reach hundreds). Then the whole standby step,
`Store.apply_changelog_batch` into RocksDB, per record, for keys that already have a row.
Nothing but this process; a minute or two.
"""

import argparse
import json
import os
import tempfile
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson

from bench.trace import RESULTS_DIR, commit_of
from streams import commands as c
from streams.envelopes import Command
from streams.store import is_behind, parsed_progress, progress_of
from tables.fold import fold
from tests.integration.cluster import ROOT
from tests.unit.memory_system import AT, MemorySystem
from tests.unit.test_store import StoreIn, changelog

SLICES = 200
APPLIED_KEYS = 50
APPLY_ROUNDS = 100
APPLIED = ("product state", "order state", "customer-orders, 50 orders")


def shop(orders: int) -> MemorySystem:
    system = MemorySystem()

    def submit(aggregate_id: str, payload: c.Message) -> None:
        system.submit(Command(command_id=uuid4(), type=type(payload).__name__,
                              aggregate_id=aggregate_id, issued_at=AT, payload=payload))

    submit("sku-1", c.RegisterProduct(name="bench sku-1", price=Decimal("2.50"), stock=10**6))
    for n in range(orders):
        submit(f"order-{n:016x}", c.PlaceOrder(customer_id="cust-1", lines=[
            c.OrderLine(sku="sku-1", quantity=1)]))
    return system


def rows() -> dict[str, dict[str, Any]]:
    """Each kind of row as a dict, its keys in the order the workers now write them."""
    found: dict[str, dict[str, Any]] = {}
    for orders in (1, 50, 400):
        system = shop(orders)
        found[f"customer-orders, {orders} orders"] = fold(system.log)["customer-orders"]["cust-1"]
    found["orders view row"] = fold(system.log)["orders"]["order-0000000000000000"]
    found["product state"] = system.state("product", "sku-1").model_dump(mode="json")
    found["order state"] = system.state("order", "order-0000000000000000").model_dump(mode="json")
    return found


def before(row: dict[str, Any]) -> bytes:
    """The row as written before: its version(s) after everything else."""
    key = "version" if "version" in row else "versions"
    return orjson.dumps({**{k: v for k, v in row.items() if k != key}, key: row[key]})


def per_call_us(function: Any, value: bytes, current: bytes | None = None) -> float:
    """The fastest of many short timings (about 5 ms each): on a machine shared with other
    work, a short slice that ran undisturbed is the figure to trust."""
    args = (value,) if current is None else (value, current)
    timer = timeit.Timer(lambda: function(*args))
    calls, _ = timer.autorange()
    calls = max(1, calls // 40)
    return min(timer.repeat(SLICES, calls)) / calls * 1e6


def bumped(row: dict[str, Any], by: int) -> dict[str, Any]:
    if "version" in row:
        return {**row, "version": row["version"] + by}
    return {**row, "versions": {key: v + by for key, v in row["versions"].items()}}


def standby_apply_us(row: dict[str, Any]) -> tuple[float, float]:
    """`Store.apply_changelog_batch` per record, each record's key already holding a row, for
    the row laid out as before and as now: the fastest of `APPLY_ROUNDS` batches of
    `APPLIED_KEYS` records each, the two layouts taking turns."""
    keys = [f"key-{n}".encode() for n in range(APPLIED_KEYS)]
    layouts: list[Callable[[dict[str, Any]], bytes]] = [before, orjson.dumps]
    best = [float("inf")] * len(layouts)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as directory:
        stores = [StoreIn(Path(directory) / str(n)) for n in range(len(layouts))]
        for store, layout in zip(stores, layouts, strict=True):
            store.apply_changelog_batch(changelog(*((key, layout(row)) for key in keys)),
                                        to_key=None, to_value=None)
        for round_ in range(1, APPLY_ROUNDS + 1):
            for n, (store, layout) in enumerate(zip(stores, layouts, strict=True)):
                batch = changelog(*((key, layout(bumped(row, round_))) for key in keys))
                started = time.perf_counter()
                store.apply_changelog_batch(batch, to_key=None, to_value=None)
                best[n] = min(best[n], time.perf_counter() - started)
    return best[0] / APPLIED_KEYS * 1e6, best[1] / APPLIED_KEYS * 1e6


def measure() -> list[dict[str, Any]]:
    found = []
    for name, row in rows().items():
        now, old = orjson.dumps(row), before(row)
        assert progress_of(now) == progress_of(old) == parsed_progress(now) is not None
        found.append({
            "row": name, "bytes": len(now),
            "before_us": round(per_call_us(progress_of, old), 3),
            "now_us": round(per_call_us(progress_of, now), 3),
            "is_behind_before_us": round(per_call_us(is_behind, old, old), 3),
            "is_behind_now_us": round(per_call_us(is_behind, now, now), 3),
        })
        if name in APPLIED:
            was, now_us = standby_apply_us(row)
            found[-1] |= {"standby_apply_before_us": round(was, 2),
                          "standby_apply_now_us": round(now_us, 2)}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store_progress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="results file (default bench/results/"
                        "<time>-store-progress.json)")
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    found = {"started": stamp, "commit": commit_of(ROOT),
             "load_average_1m": round(os.getloadavg()[0], 2), "rows": measure()}
    out = args.out or RESULTS_DIR / f"{stamp}-store-progress.json"
    out.write_text(json.dumps(found, indent=2) + "\n")
    print(f"{'row':32} {'bytes':>6} {'before µs':>10} {'now µs':>8} "
          f"{'is_behind before/now µs':>24}")
    for r in found["rows"]:
        print(f"{r['row']:32} {r['bytes']:>6} {r['before_us']:>10} {r['now_us']:>8} "
              f"{r['is_behind_before_us']:>12} / {r['is_behind_now_us']}")
    for r in found["rows"]:
        if "standby_apply_now_us" in r:
            print(f"standby apply, {r['row']}: {r['standby_apply_before_us']} µs a record "
                  f"before, {r['standby_apply_now_us']} now")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
