"""The direct hand-off: a message is delivered, or, when a rebalance suspends the flow, it is
interrupted and does not count as read (so the refetch after the seek is not dropped)."""

import asyncio

from faust.types import TP

from streams.app import app
from streams.transport import Consumer

PARTITION = TP("t", 0)


def drain_step(consumer: Consumer, delivery: object, offset: int) -> asyncio.Task[None]:
    """What Faust's drain loop does per message: hand it off, then record it as read."""
    async def step() -> None:
        await consumer.wait_first(delivery, consumer.suspend_flow.wait())
        consumer._read_offset[PARTITION] = offset

    return asyncio.ensure_future(step())


async def test_a_delivered_message_counts_as_read() -> None:
    consumer = app.consumer
    assert isinstance(consumer, Consumer)
    consumer.resume_flow()
    delivered = []

    async def deliver() -> None:
        delivered.append(1)

    await drain_step(consumer, deliver(), 7)
    assert delivered == [1] and consumer._read_offset[PARTITION] == 7


async def test_a_delivery_blocked_when_the_flow_is_suspended_is_interrupted_and_not_read() -> None:
    consumer = app.consumer
    consumer.resume_flow()
    consumer._read_offset[PARTITION] = 10
    never = asyncio.Event()

    async def blocked() -> None:
        await never.wait()

    step = drain_step(consumer, blocked(), 11)
    await asyncio.sleep(0.01)
    consumer.stop_flow()
    await asyncio.wait_for(step, 5)
    assert consumer._read_offset[PARTITION] == 10

    async def never_run() -> None:
        raise AssertionError("delivered while the flow was suspended")

    await drain_step(consumer, never_run(), 12)  # still suspended: not delivered, not read
    assert consumer._read_offset[PARTITION] == 10
    consumer.resume_flow()
    consumer._read_offset[PARTITION] = 13  # a seek after the rebalance is recorded
    assert consumer._read_offset[PARTITION] == 13
