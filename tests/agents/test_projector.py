"""The event-log agent, fed through Faust's test_context: parse, fold in batches, store,
forward, route to the saga, park garbage."""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from agents import event_log
from agents.event_log import read_event_log
from agents.repartition import REPARTITIONED
from streams import commands as c
from streams import events as e
from streams import topics
from streams.app import settings
from streams.envelopes import Event, encode
from tables.progress import progress
from tables.storage import VIEW_TABLES


def order_placed(order_id: str, version: int = 1) -> bytes:
    return encode(Event(
        event_id=uuid4(), type="OrderPlaced", aggregate_id=order_id, version=version,
        command_id=UUID(int=1), correlation_id=UUID(int=1),
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
        payload=e.OrderPlaced(customer_id="cust-1", lines=[c.OrderLine(sku="s", quantity=1)],
                    channel="web"),
    ))


async def test_the_event_log_agent_folds_a_batch_per_key_and_parks_garbage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repartitioned: list[tuple[bytes, bytes]] = []
    routed: list[bytes] = []
    parked: list[bytes] = []

    async def capture(key: bytes, value: bytes, **_: Any) -> None:
        repartitioned.append((key, value))

    async def route(key: bytes, value: bytes, **_: Any) -> None:
        routed.append(key)

    async def park(key: bytes, value: bytes, **_: Any) -> asyncio.Future[None]:
        parked.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    monkeypatch.setattr(REPARTITIONED["customer-orders"], "send", capture)
    monkeypatch.setattr(topics.reservation_saga, "send", route)
    monkeypatch.setattr(topics.dead_letters, "send", park)
    async with read_event_log.test_context() as agent:
        await agent.put(b"\xff not an event", key=b"x")
        await agent.put(order_placed("order-1"), key=b"order-1")
        await agent.put(order_placed("order-1"), key=b"order-1")
        await agent.put(order_placed("order-1", version=2), key=b"order-1")
        assert await progress.wait_until("orders", 0, lambda: progress.applied.get(
            ("orders", 0), -1) >= 3, timeout=10)
        row = orjson.loads(VIEW_TABLES["orders"][b"order-1"])
    assert row["versions"] == {"order-1": 2}
    assert [key for key, _ in repartitioned] == [b"cust-1"] * 3
    assert routed == [b"order-1"] * 3
    [letter] = [orjson.loads(value) for value in parked]
    assert letter["source_offset"] == 0 and "unreadable" in letter["error"]


def orders_changelog_writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, bytes,
                                                                       dict[str, int]]]:
    """Every changelog record the orders table sends: partition, key and the row's versions;
    nothing is sent to the repartition topic or the saga."""
    writes: list[tuple[int | None, bytes, dict[str, int]]] = []
    table = VIEW_TABLES["orders"]
    send_changelog = table.send_changelog

    def count(partition: int | None, key: bytes, value: bytes, **kwargs: Any) -> Any:
        writes.append((partition, key, orjson.loads(value)["versions"]))
        return send_changelog(partition, key, value, **kwargs)

    async def ignore(*_: Any, **__: Any) -> None:
        return None

    monkeypatch.setattr(table, "send_changelog", count)
    monkeypatch.setattr(REPARTITIONED["customer-orders"], "send", ignore)
    monkeypatch.setattr(topics.reservation_saga, "send", ignore)
    return writes


async def test_a_batch_writes_each_key_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    writes = orders_changelog_writes(monkeypatch)
    table = VIEW_TABLES["orders"]
    monkeypatch.setattr(event_log, "settings", replace(settings, batch_within=1.0))
    async with read_event_log.test_context() as agent:
        for version in (1, 2, 3):
            await agent.put(order_placed("order-2", version), key=b"order-2", partition=1)
        await agent.put(order_placed("order-3"), key=b"order-3", partition=1)
        assert await progress.wait_until("orders", 1, lambda: progress.applied.get(
            ("orders", 1), -1) >= 3, timeout=10)
    assert sorted(write[:2] for write in writes) == [(1, b"order-2"), (1, b"order-3")]
    assert orjson.loads(table[b"order-2"])["versions"] == {"order-2": 3}


async def test_a_batch_folded_again_writes_its_rows_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a SIGKILL the worker's RocksDB can hold a row whose changelog record was never
    sent; the redelivered batch is the one chance to send it."""
    writes = orders_changelog_writes(monkeypatch)
    confirmed = order_placed("order-5", 2)
    async with read_event_log.test_context() as agent:
        await agent.put(order_placed("order-5"), key=b"order-5", partition=3)
        await agent.put(confirmed, key=b"order-5", partition=3)
        assert await progress.wait_until("orders", 3, lambda: progress.applied.get(
            ("orders", 3), -1) >= 1, timeout=10)
        folded = len(writes)
        await agent.put(confirmed, key=b"order-5", partition=3)
        assert await progress.wait_until("orders", 3, lambda: progress.applied.get(
            ("orders", 3), -1) >= 2, timeout=10)
    assert writes[folded:] == [(3, b"order-5", {"order-5": 2})]


def dead_letters_kept(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The values the agent parks; nothing is sent to the repartition topic or the saga."""
    parked: list[bytes] = []

    async def ignore(*_: Any, **__: Any) -> None:
        return None

    async def park(key: bytes, value: bytes, **_: Any) -> asyncio.Future[None]:
        parked.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    monkeypatch.setattr(REPARTITIONED["customer-orders"], "send", ignore)
    monkeypatch.setattr(topics.reservation_saga, "send", ignore)
    monkeypatch.setattr(topics.dead_letters, "send", park)
    return parked


async def test_a_row_that_cannot_be_stored_parks_its_events_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parked = dead_letters_kept(monkeypatch)

    def product_event(version: int, payload: Any) -> bytes:
        return encode(Event(
            event_id=uuid4(), type=type(payload).__name__, aggregate_id="sku-huge",
            version=version, command_id=UUID(int=1), correlation_id=UUID(int=1),
            occurred_at=datetime(2026, 11, 23, tzinfo=UTC), payload=payload))

    registered = product_event(1, e.ProductRegistered(name="Lamp", price="1.00", stock=0))
    huge = product_event(2, e.StockAdded(quantity=2**70))  # no JSON row can hold it
    monkeypatch.setattr(event_log, "settings", replace(settings, batch_within=1.0))
    async with read_event_log.test_context() as agent:
        await agent.put(registered, key=b"sku-huge", partition=2)
        await agent.put(huge, key=b"sku-huge", partition=2)
        await agent.put(order_placed("order-fine"), key=b"order-fine", partition=2)
        assert await progress.wait_until("orders", 2, lambda: progress.applied.get(
            ("orders", 2), -1) >= 2, timeout=10)
    letters = [orjson.loads(value) for value in parked]
    assert [letter["source_offset"] for letter in letters] == [0, 1]
    assert all("could not store the row" in letter["error"] for letter in letters)
    assert orjson.loads(VIEW_TABLES["orders"][b"order-fine"])["versions"] == {"order-fine": 1}


async def test_a_row_too_large_for_a_changelog_record_parks_its_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parked = dead_letters_kept(monkeypatch)
    monkeypatch.setattr("tables.view.MAX_ROW_BYTES", 400)  # an order row is about 300 bytes
    async with read_event_log.test_context() as agent:
        await agent.put(order_placed("order-fits"), key=b"order-fits", partition=1)
        await agent.put(encode(Event(
            event_id=uuid4(), type="OrderPlaced", aggregate_id="order-wide", version=1,
            command_id=UUID(int=1), correlation_id=UUID(int=1),
            occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
            payload=e.OrderPlaced(customer_id="cust-1", channel="web",
                                  lines=[c.OrderLine(sku=f"sku-{n}", quantity=1)
                                         for n in range(20)]),
        )), key=b"order-wide", partition=1)
        assert await progress.wait_until("orders", 1, lambda: progress.applied.get(
            ("orders", 1), -1) >= 1, timeout=10)
        assert VIEW_TABLES["orders"].get(b"order-wide") is None
    [letter] = [orjson.loads(value) for value in parked]
    assert letter["source_offset"] == 1
    assert "RowTooLarge: orders-v1 row 'order-wide' would be" in letter["error"]
    assert orjson.loads(VIEW_TABLES["orders"][b"order-fits"])["versions"] == {"order-fits": 1}
