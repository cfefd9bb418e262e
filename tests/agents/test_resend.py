"""A batch of changelog records that fails with a retriable error is sent again with its keys'
current values, and a command's result is sent again, and `flush` waits for both: a topic
created moments before can have no leader for longer than the send timeout (seen under
load), and the worker stopped on the flush, or the result was lost. No broker needed:
aiokafka's answers are scripted."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import NotLeaderForPartitionError, UnsupportedVersionError
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.app import app
from streams.faust_patches import RESENT_TOPICS, Producer, track_every_topic


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
    with pytest.raises(RuntimeError, match=r"1 sends \(changelog batches, results\) failed"):
        await producer.flush()
    assert len(scripted.batches) == 1


async def test_a_result_that_fails_is_sent_again_and_a_commit_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust does not await a result's send; a result lost to a changelog or topic created
    moments before was a command answered by nobody, ever."""
    answers: list[BaseException | int] = [NotLeaderForPartitionError(), 41]
    sent: list[tuple[str, bytes | None]] = []

    async def send(self: Any, topic: str, key: bytes | None, value: bytes | None, *_: Any,
                   **__: Any) -> Any:
        sent.append((topic, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(Sent(answer))
        return future

    monkeypatch.setattr(faust_aiokafka.Producer, "send", send)
    RESENT_TOPICS.add("results-test")
    try:
        producer = Producer(app.transport, loop=asyncio.get_running_loop())
        monkeypatch.setattr(producer, "stopped", lambda: False)
        future = await producer.send("results-test", b"c1", b"accepted", None, None, None)
        await producer.flush()
    finally:
        RESENT_TOPICS.discard("results-test")
    assert sent == [("results-test", b"accepted")] * 2
    assert future.result().offset == 41


async def test_a_record_of_another_topic_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    async def send(*_: Any, **__: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(NotLeaderForPartitionError())
        return future

    monkeypatch.setattr(faust_aiokafka.Producer, "send", send)
    producer = Producer(app.transport, loop=asyncio.get_running_loop())
    monkeypatch.setattr(producer, "stopped", lambda: False)
    future = await producer.send("orders-changelog", b"k", b"v", None, None, None)
    with pytest.raises(NotLeaderForPartitionError):
        await future
    await asyncio.sleep(0)  # the done callbacks
    assert "a record for orders-changelog was not sent" in caplog.text


async def test_a_topic_known_from_the_first_metadata_stays_in_every_refresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka returned such a topic untracked; once a new topic was tracked, refreshes
    asked for it alone, and records for the first had no leader until the send timeout."""
    client = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9").client
    monkeypatch.setattr(client.cluster, "partitions_for_topic",
                        lambda topic: {0, 1} if topic == "events" else None)
    track_every_topic(client)
    assert await client._wait_on_metadata("events") == {0, 1}
    assert "events" in client._topics
