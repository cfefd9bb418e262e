"""A worker out of its group after a stop sends nothing: not what it hands to its producer
from then on, and not what aiokafka's accumulator already holds (no broker needed: nothing
may leave the accumulator)."""

import asyncio
import gc
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from faust.transport.producer import ProducerBuffer

from streams.app import app
from streams.faust_patches import Buffer, Producer, fence_accumulator
from streams.membership import Fenced


async def test_the_accumulator_fails_its_batches_instead_of_sending_them_once_stopped() -> None:
    producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:9")
    accumulator = producer._message_accumulator
    stopped = False
    fence_accumulator(accumulator, lambda: stopped)
    tp = TopicPartition("orders", 0)
    held = [await accumulator.add_message(tp, b"k", b"v%d" % n, timeout=1) for n in range(3)]
    assert accumulator.drain_by_nodes(ignore_nodes=set())[0] == {}  # no leader known: kept
    assert not any(future.done() for future in held)
    stopped = True
    accumulator.drain_by_nodes(ignore_nodes=set())
    await asyncio.sleep(0)
    for future in held:
        with pytest.raises(Fenced):
            future.result()


async def test_a_flush_waits_for_every_record_however_slow_the_producer_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's flush gave up after 0.1 s without a record sent, and a commit went ahead
    with changelog records still in the buffer."""
    release = asyncio.Event()
    sent: list[Any] = []

    async def slow_send(_: ProducerBuffer, fut: Any) -> None:
        await release.wait()
        sent.append(fut)

    monkeypatch.setattr(ProducerBuffer, "_send_pending", slow_send)
    buffer = Buffer()
    buffer.app = app
    await buffer.start()
    try:
        for n in range(3):
            buffer.pending.put_nowait(n)
        flushing = asyncio.ensure_future(buffer.flush())
        await asyncio.sleep(0.5)
        assert not flushing.done()
        release.set()
        await asyncio.wait_for(flushing, 5)
        assert sent == [0, 1, 2]
    finally:
        await buffer.stop()


async def test_a_refused_record_nobody_awaits_logs_one_warning_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Faust sends changelog records without awaiting them: each refused one used to log
    "Future exception was never retrieved"."""
    unhandled: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    producer = Producer(app.transport, loop=loop)
    monkeypatch.setattr(producer, "stopped", lambda: True)
    for n in range(3):
        await producer.send("orders-changelog", b"k", b"v%d" % n, None, None, None)
    await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert [c for c in unhandled if isinstance(c.get("exception"), Fenced)] == []
    assert [r.message for r in caplog.records if "refusing records" in r.message] == [
        "out of the group after a stop: refusing records until the next assignment"]
    refused = await producer.send("orders-changelog", b"k", b"v", None, None, None)
    with pytest.raises(Fenced):
        await refused
