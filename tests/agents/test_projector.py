"""The projector agent, fed through Faust's test_context: parse, fold, store, park garbage."""

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from agents.projector import REPARTITIONED, VIEW_TABLES, project_events
from streams import commands as c
from streams import events as e
from streams import topics
from streams.envelopes import Event, encode


def order_placed(order_id: str, version: int = 1) -> bytes:
    return encode(Event(
        event_id=uuid4(), type="OrderPlaced", aggregate_id=order_id, version=version,
        command_id=UUID(int=1), correlation_id=UUID(int=1),
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
        payload=e.OrderPlaced(customer_id="cust-1", lines=[c.OrderLine(sku="s", quantity=1)]),
    ))


async def test_the_projector_folds_events_into_the_orders_table_and_parks_garbage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repartitioned: list[tuple[bytes, bytes]] = []
    parked: list[bytes] = []

    async def capture(key: bytes, value: bytes, **_: Any) -> None:
        repartitioned.append((key, value))

    async def park(key: bytes, value: bytes, **_: Any) -> asyncio.Future[None]:
        parked.append(value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    monkeypatch.setattr(REPARTITIONED["customer-orders"], "send", capture)
    monkeypatch.setattr(topics.dead_letters, "send", park)
    async with project_events.test_context() as agent:
        await agent.put(b"\xff not an event", key=b"x")
        await agent.put(order_placed("order-1"), key=b"order-1")
        await agent.put(order_placed("order-1"), key=b"order-1")
        row = orjson.loads(VIEW_TABLES["orders"][b"order-1"])
    assert row["data"]["status"] == "placed"
    assert row["versions"] == {"order-1": 1}
    assert [key for key, _ in repartitioned] == [b"cust-1", b"cust-1"]
    [letter] = [orjson.loads(value) for value in parked]
    assert letter["source_offset"] == 0 and "unreadable" in letter["error"]
