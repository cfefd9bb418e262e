"""The orders-by-status index, written by the projection beside each order row."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from agents.event_log import read_event_log
from agents.repartition import REPARTITIONED
from streams import commands as c
from streams import events as e
from streams import topics
from streams.envelopes import Event, encode
from tables.progress import progress
from tables.storage import INDEX_TABLES


def order_event(order_id: str, version: int, payload: Any) -> bytes:
    return encode(Event(
        event_id=uuid4(), type=type(payload).__name__, aggregate_id=order_id, version=version,
        command_id=UUID(int=1), correlation_id=UUID(int=1),
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC), payload=payload))


async def test_an_order_moves_between_index_entries_once_and_redeliveries_resend_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def dropped(*_: Any, **__: Any) -> None:
        return None

    changelog: list[tuple[bytes, bytes | None]] = []

    send_changelog = INDEX_TABLES["orders"].send_changelog

    def record(partition: int | None, key: bytes, value: bytes | None, **kwargs: Any) -> Any:
        changelog.append((key, value))
        return send_changelog(partition, key, value, **kwargs)

    monkeypatch.setattr(INDEX_TABLES["orders"], "send_changelog", record)
    for topic in REPARTITIONED.values():
        monkeypatch.setattr(topic, "send", dropped)
    monkeypatch.setattr(topics.reservation_saga, "send", dropped)
    order = f"order-{uuid4().hex[:6]}"
    placed = order_event(order, 1, e.OrderPlaced(
        channel="web", customer_id="cust-1", lines=[c.OrderLine(sku="s", quantity=2)]))
    confirmed = order_event(order, 2, e.OrderConfirmed(
        customer_id="cust-1", lines=[c.PricedLine(sku="s", quantity=2,
                                                  unit_price=Decimal("1.50"))],
        total=Decimal("3.00")))
    index = INDEX_TABLES["orders"]
    async with read_event_log.test_context() as agent:
        for n, value in enumerate([placed, placed, confirmed, placed, confirmed]):
            # Partition 3: the projector's tests wait on the progress of partitions 0 to 2.
            await agent.put(value, key=order.encode(), partition=3)
            assert await progress.wait_until("orders", 3, lambda n=n: progress.applied.get(
                ("orders", 3), -1) >= n, timeout=10)
            if n == 1:
                assert [k for k in index if k.endswith(order.encode())] == [
                    f"placed\0{order}".encode()]
        assert [k for k in index if k.endswith(order.encode())] == [
            f"confirmed\0{order}".encode()]
    # Each redelivery sends the current entry again (RocksDB may hold it and the changelog
    # not, after a crash); it moves once.
    placed_entry, confirmed_entry = f"placed\0{order}".encode(), f"confirmed\0{order}".encode()
    assert changelog == [(placed_entry, b""), (placed_entry, b""),
                         (confirmed_entry, b""), (placed_entry, None),
                         (confirmed_entry, b""), (confirmed_entry, b"")]


async def test_an_index_entry_lost_with_a_crash_is_put_back_when_its_batch_comes_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The row's changelog record got out and its index entry's did not: the worker restored
    from the changelogs has the row and no entry, and folding the batch again changes no row."""
    async def dropped(*_: Any, **__: Any) -> None:
        return None

    for topic in REPARTITIONED.values():
        monkeypatch.setattr(topic, "send", dropped)
    monkeypatch.setattr(topics.reservation_saga, "send", dropped)
    order = f"order-{uuid4().hex[:6]}"
    placed = order_event(order, 1, e.OrderPlaced(
        channel="web", customer_id="cust-1", lines=[c.OrderLine(sku="s", quantity=2)]))
    index = INDEX_TABLES["orders"]
    entry = f"placed\0{order}".encode()
    async with read_event_log.test_context() as agent:
        for _ in range(2):
            progress.applied.pop(("orders", 4), None)
            await agent.put(placed, key=order.encode(), partition=4)
            assert await progress.wait_until("orders", 4, lambda: ("orders", 4) in progress.applied,
                                             timeout=10)
            assert entry in index
            index.data.pop(entry)
