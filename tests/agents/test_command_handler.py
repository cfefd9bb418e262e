"""The command handler, fed a batch through Faust's test_context: each command sees the state
the commands before it left, a repeat gets the first result, events go out before replies."""

import asyncio
from dataclasses import replace
from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import orjson
import pytest

from agents import command_handler
from agents.command_handler import handle_commands
from streams.app import settings
from streams.partitioning import owning_partition


def command(kind: str, sku: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), "type": kind, "aggregate_id": sku,
            "payload": payload, **fields}


async def test_commands_are_decided_in_order_and_a_repeat_gets_the_first_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def append(partition: int, records: list[tuple[bytes, bytes]]) -> list[Any]:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(partition=0, offset=len(events)))
        events.extend(orjson.loads(value) for _, value in records)
        return [(done, len(records))]

    async def reply(sent: list[tuple[bytes, bytes]]) -> None:
        results.extend(orjson.loads(value) for _, value in sent)
        if len(results) == 4:
            arrived.set()

    monkeypatch.setattr(command_handler, "send_events", append)
    monkeypatch.setattr(command_handler, "send_results", reply)
    monkeypatch.setattr(command_handler, "settings", replace(settings, batch_within=1.0))
    sku = f"sku-{uuid4().hex[:8]}"
    register = command("RegisterProduct", sku, {"name": "Lamp", "price": "9.50"})
    restock = command("Restock", sku, {"quantity": 3})
    stale = command("ChangePrice", sku, {"price": "1.00"}, expected_version=1)
    partition = owning_partition(sku, settings.partitions)
    async with handle_commands.test_context() as agent:
        for body in (register, restock, restock, stale):
            await agent.put(orjson.dumps(body), key=sku.encode(), partition=partition)
        await asyncio.wait_for(arrived.wait(), 10)
    assert [(e["type"], e["version"]) for e in events] == [("ProductRegistered", 1),
                                                          ("StockAdded", 2)]
    first, second, repeat, rejected = results
    assert (first["status"], first["version"], first["positions"]) == (
        "accepted", 1, [{"partition": 0, "offset": 0}])
    assert (second["status"], second["version"]) == ("accepted", 2)
    assert repeat == second
    assert (rejected["status"], rejected["version"]) == ("rejected", 2)
    assert "expected version 1" in rejected["reason"]


async def test_a_client_cannot_issue_an_internal_command_nor_spend_the_sagas_command_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the public topic, ReserveStock is rejected naming the rule, changes nothing and
    answers to no saga; the saga's command with the same id, on the internal topic, applies."""
    events: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def append(partition: int, records: list[tuple[bytes, bytes]]) -> list[Any]:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(SimpleNamespace(partition=0, offset=len(events)))
        events.extend(orjson.loads(value) for _, value in records)
        return [(done, len(records))]

    async def reply(sent: list[tuple[bytes, bytes]]) -> None:
        results.extend(orjson.loads(value) for _, value in sent)
        if len(results) == 3:
            arrived.set()

    monkeypatch.setattr(command_handler, "send_events", append)
    monkeypatch.setattr(command_handler, "send_results", reply)
    sku = f"sku-{uuid4().hex[:8]}"
    partition = owning_partition(sku, settings.partitions)
    register = command("RegisterProduct", sku, {"name": "Lamp", "price": "9.50", "stock": 5})
    reserve = command("ReserveStock", sku, {"order_id": "o-1", "quantity": 5}, reply_to="o-1")
    async with handle_commands.test_context() as public:
        for body in (register, reserve):
            await public.put(orjson.dumps(body), key=sku.encode(), partition=partition)
    # a test context's records come from the topic "<internal>": let that be the saga's
    monkeypatch.setattr(command_handler, "INTERNAL_TOPIC", "<internal>")
    async with handle_commands.test_context() as internal:
        await internal.put(orjson.dumps(reserve), key=sku.encode(), partition=partition)
        await asyncio.wait_for(arrived.wait(), 10)
    registered, refused, reserved = results
    assert registered["status"] == "accepted"
    assert (refused["status"], refused["version"], refused["reply_to"]) == ("rejected", 1, None)
    assert refused["reason"] == "ReserveStock is internal: only the reservation saga may issue it"
    assert (reserved["status"], reserved["version"], reserved["reply_to"]) == ("accepted", 2, "o-1")
    assert [e["type"] for e in events] == ["ProductRegistered", "StockReserved"]


async def test_a_batchs_events_go_as_one_send_per_partition_and_each_learns_its_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events of one partition go in one call, in decision order; a call that aiokafka splits
    into several producer batches still gives each event the offset it was written at."""
    calls: list[tuple[int, list[bytes]]] = []

    async def append(partition: int, records: list[tuple[bytes, bytes]]) -> list[Any]:
        calls.append((partition, [value for _, value in records]))
        batches = []
        for base in range(0, len(records), 2):  # two records a producer batch
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(SimpleNamespace(partition=partition, offset=100 + base))
            batches.append((done, min(2, len(records) - base)))
        return batches

    def decision(partition: int, *events: bytes) -> command_handler.Decision:
        record = SimpleNamespace(message=SimpleNamespace(partition=partition))
        parsed = command_handler.parse_command(orjson.dumps(command("Restock", "sku-1",
                                                                    {"quantity": 1})))
        return command_handler.Decision(record, parsed, events=list(events))  # type: ignore[arg-type]

    monkeypatch.setattr(command_handler, "send_events", append)
    first, second, other = decision(0, b"a", b"b"), decision(0, b"c"), decision(1, b"d")
    await command_handler.append([first, second, other])
    assert calls == [(0, [b"a", b"b", b"c"]), (1, [b"d"])]
    offsets = [[(future.result().offset + index) for future, index in d.sent]
               for d in (first, second, other)]
    assert offsets == [[100, 101], [102], [100]]


async def test_a_command_that_would_leave_too_large_a_state_is_rejected_and_appends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[bytes] = []
    results: list[dict[str, Any]] = []
    arrived = asyncio.Event()

    async def append(partition: int, records: list[tuple[bytes, bytes]]) -> list[Any]:
        events.extend(value for _, value in records)
        return []

    async def reply(sent: list[tuple[bytes, bytes]]) -> None:
        results.extend(orjson.loads(value) for _, value in sent)
        arrived.set()

    monkeypatch.setattr(command_handler, "send_events", append)
    monkeypatch.setattr(command_handler, "send_results", reply)
    monkeypatch.setattr("tables.view.MAX_ROW_BYTES", 40)
    sku = f"sku-{uuid4().hex[:8]}"
    register = command("RegisterProduct", sku, {"name": "Lamp", "price": "9.50"})
    async with handle_commands.test_context() as agent:
        await agent.put(orjson.dumps(register), key=sku.encode(),
                        partition=owning_partition(sku, settings.partitions))
        await asyncio.wait_for(arrived.wait(), 10)
    [rejected] = results
    assert (rejected["status"], rejected["version"]) == ("rejected", 0)
    assert f"product {sku} would hold" in rejected["reason"]
    assert "over the 40 a changelog record may hold" in rejected["reason"]
    assert events == []
