"""Waiting for a command's result: woken by the results agent when that command's result is
recorded, without a look at the view for every other result folded meanwhile."""

import asyncio
from uuid import uuid4

import orjson
import pytest

from agents.results import read_results
from streams.app import settings
from streams.partitioning import owning_partition
from tables import results


def result(command_id: str) -> bytes:
    return orjson.dumps({"command_id": command_id, "type": "Restock", "status": "accepted",
                         "aggregate_id": "sku-1", "version": 2})


async def put(agent: object, command_id: str) -> None:
    await agent.put(result(command_id), key=command_id.encode(),  # type: ignore[attr-defined]
                    partition=owning_partition(command_id, settings.partitions))


async def test_a_waiter_gets_its_result_and_looks_once_whatever_else_is_folded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looks: list[str] = []
    look = results.result_of

    def counted(command_id: str) -> results.CommandResult | None:
        looks.append(command_id)
        return look(command_id)

    monkeypatch.setattr(results, "result_of", counted)
    waited = str(uuid4())
    async with read_results.test_context() as agent:
        waiting = asyncio.ensure_future(results.wait_for_result(waited, 10.0))
        await asyncio.sleep(0)
        for _ in range(20):
            await put(agent, str(uuid4()))
        assert not waiting.done()
        await put(agent, waited)
        answer = await asyncio.wait_for(waiting, 10)
    assert answer is not None and str(answer.command_id) == waited
    assert looks.count(waited) == 2  # before waiting, and once woken
    assert len(looks) == 2
    assert not results.WAITING


async def test_a_wait_that_ends_without_its_result_leaves_no_waiter() -> None:
    assert await results.wait_for_result(str(uuid4()), 0.01) is None
    cancelled = asyncio.ensure_future(results.wait_for_result(str(uuid4()), 10.0))
    await asyncio.sleep(0)
    assert results.WAITING
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert not results.WAITING
