"""The benchmark's data: product events for `keys` skus, and the rows they must fold into.

Each sku gets `ProductRegistered` then `StockAdded` or `PriceChanged` with consecutive
versions. The log holds each version layer in a shuffled sku order, so a sku's events are
in order but spread across the log, as a busy shop's would be. StockReserved and
StockReleased are left out on purpose: the worker routes reservations to the saga (a
produce and saga state per event), which would time the saga, not the projection.
"""

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from streams.envelopes import parse_event
from tables.products import VIEW
from tables.view import apply

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Expected:
    """What every consumer must end with: the folded row of each sku, and totals."""

    rows: dict[str, bytes] = field(default_factory=dict)  # sku -> canonical JSON row
    events: int = 0
    version_sum: int = 0

    def row(self, sku: str) -> dict[str, object]:
        return dict(orjson.loads(self.rows[sku]))


def canonical(row: object) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


def sku_name(index: int) -> str:
    return f"sku-{index:07d}"


def counts(events: int, keys: int) -> list[int]:
    """How many events each sku gets: `events` spread as evenly as possible."""
    if keys < 1 or events < keys:
        raise ValueError(f"need at least one event per key: {events} events, {keys} keys")
    base, extra = divmod(events, keys)
    return [base + (1 if index < extra else 0) for index in range(keys)]


def generate(events: int, keys: int, seed: int = 6) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every event, in log order; the same arguments give the same bytes."""
    rng = random.Random(seed)
    per_key = counts(events, keys)
    for version in range(1, max(per_key) + 1):
        layer = [index for index in range(keys) if per_key[index] >= version]
        rng.shuffle(layer)
        for position, index in enumerate(layer):
            sku = sku_name(index)
            at = EPOCH + timedelta(hours=version, microseconds=position)
            yield sku.encode(), orjson.dumps(_event(rng, sku, version, at))


def _event(rng: random.Random, sku: str, version: int, at: datetime) -> dict[str, object]:
    command_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if version == 1:
        kind, payload = "ProductRegistered", {"name": f"Product {sku}", "price": _price(rng),
                                              "stock": rng.randint(0, 100)}
    elif rng.random() < 0.7:
        kind, payload = "StockAdded", {"quantity": rng.randint(1, 50)}
    else:
        kind, payload = "PriceChanged", {"price": _price(rng)}
    return {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "type": kind, "schema_version": 1, "aggregate_id": sku, "version": version,
        "command_id": command_id, "correlation_id": command_id,
        "occurred_at": at.isoformat().replace("+00:00", "Z"), "payload": payload,
    }


def _price(rng: random.Random) -> str:
    return f"{rng.randint(100, 99999) // 100}.{rng.randint(0, 99):02d}"


def fold_into(expected: Expected, key: bytes, value: bytes) -> None:
    """Fold one generated event with the same pure function the consumers apply."""
    event = parse_event(value)
    sku = key.decode()
    stored = expected.rows.get(sku)
    row = apply(VIEW, orjson.loads(stored) if stored is not None else None, event, sku)
    if row is None:
        raise ValueError(f"the generator repeated {sku} version {event.version}")
    expected.rows[sku] = canonical(row)
    expected.events += 1
    expected.version_sum += event.version
