"""A batch whose handling keeps failing is parked with its attempts; a bug is parked at once."""

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from agents.dead_letters import handle_batch_or_park
from agents.retry import BACKOFF
from streams import topics


def record(offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(
        topic="t.commands", partition=2, offset=offset, key=b"k", value=b"{}"))


@pytest.fixture
def parked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    letters: list[dict[str, Any]] = []

    async def send(key: bytes, value: bytes, **_: Any) -> asyncio.Future[None]:
        letters.append(orjson.loads(value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    monkeypatch.setattr(topics.dead_letters, "send", send)
    return letters


async def test_a_handler_that_keeps_meeting_a_down_broker_is_parked_after_its_attempts(
    parked: list[dict[str, Any]],
) -> None:
    calls = []

    async def handler() -> None:
        calls.append(1)
        raise KafkaConnectionError("broker down")

    await handle_batch_or_park("command batch", [record(7), record(8)], handler)
    assert [letter["source_offset"] for letter in parked] == [7, 8]
    assert len(calls) == BACKOFF.attempts
    assert all(letter["attempts"] == BACKOFF.attempts for letter in parked)
    assert all("kept failing" in letter["error"] for letter in parked)


async def test_a_handler_that_recovers_parks_nothing(parked: list[dict[str, Any]]) -> None:
    calls = []

    async def handler() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise KafkaConnectionError("broker down")

    await handle_batch_or_park("command batch", [record(7)], handler)
    assert parked == [] and len(calls) == 2


async def test_a_bug_is_parked_at_once(parked: list[dict[str, Any]]) -> None:
    async def handler() -> None:
        raise KeyError("missing")

    await handle_batch_or_park("saga batch", [record(7)], handler)
    [letter] = parked
    assert letter["attempts"] == 1 and "KeyError" in letter["error"]
