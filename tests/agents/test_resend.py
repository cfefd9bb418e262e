"""A batch of changelog records that fails with a retriable error is sent again with its keys'
current values, and `flush` waits for it: a changelog created moments before the worker's
first flush can have no leader for longer than the send timeout, and the worker stopped on
it. No broker needed: aiokafka's answers are scripted."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import NotLeaderForPartitionError, UnsupportedVersionError

from streams.app import app
from streams.faust_patches import Producer


@dataclass
class Batch:
    rows: list[tuple[bytes, bytes | None]] = field(default_factory=list)

    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> object | None:
        self.rows.append((key, value))
        return object()

    def close(self) -> None:
        pass

    def record_count(self) -> int:
        return len(self.rows)


@dataclass
class Scripted:
    """aiokafka's producer, answering the batches in turn with `answers`: an error, or the
    first offset."""

    answers: list[BaseException | int]
    batches: list[list[tuple[bytes, bytes | None]]] = field(default_factory=list)

    def create_batch(self) -> Batch:
        return Batch()

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> Any:
        self.batches.append(batch.rows)
        answer = self.answers.pop(0)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(Sent(answer))
        return future


@dataclass
class Sent:
    offset: int


def producer_on(scripted: Scripted, monkeypatch: pytest.MonkeyPatch) -> Producer:
    producer = Producer(app.transport, loop=asyncio.get_running_loop())
    monkeypatch.setattr(producer, "_ensure_producer", lambda: scripted)
    monkeypatch.setattr(producer, "stopped", lambda: False)
    return producer


async def test_a_batch_without_a_leader_is_sent_again_with_the_current_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted = Scripted([NotLeaderForPartitionError(), 7])
    stored = {b"a": b"a2", b"b": b"b1"}  # `a` changed after the first batch was made
    producer = producer_on(scripted, monkeypatch)
    [(future, count)] = await producer.send_records(
        "orders-changelog", 3, [(b"a", b"a1"), (b"b", b"b1")],
        lambda keys: [stored.get(key) for key in keys])
    await producer.flush()
    assert scripted.batches == [[(b"a", b"a1"), (b"b", b"b1")], [(b"a", b"a2"), (b"b", b"b1")]]
    assert (future.result().offset, count) == (7, 2)


async def test_a_batch_failing_for_good_makes_flush_raise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted = Scripted([UnsupportedVersionError()])
    producer = producer_on(scripted, monkeypatch)
    await producer.send_records("orders-changelog", 0, [(b"a", b"a1")], lambda keys: [None])
    with pytest.raises(RuntimeError, match="1 batches of changelog records were not sent"):
        await producer.flush()
    assert len(scripted.batches) == 1
