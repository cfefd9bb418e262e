"""The direct hand-off (SHOPSTREAM_HANDOFF=direct): a message is delivered, and a delivery
blocked when a rebalance suspends the flow is interrupted, as Faust's own race does."""

import asyncio
from typing import Any

from streams.app import app
from streams.transport import Consumer, Transport


def consumer() -> Consumer:
    async def ignore(_: Any) -> None:
        return None

    made = Transport(app.conf.broker_consumer, app).create_consumer(
        callback=ignore, on_partitions_revoked=ignore, on_partitions_assigned=ignore)
    assert isinstance(made, Consumer)
    made.resume_flow()
    return made


async def test_a_message_is_handed_to_the_streams_directly() -> None:
    direct = consumer()
    delivered = []

    async def deliver() -> str:
        delivered.append(1)
        return "done"

    outcome = await direct.wait_first(deliver(), direct.suspend_flow.wait())
    assert delivered == [1] and outcome.results == ["done"] and not outcome.stopped


async def test_a_delivery_blocked_when_the_flow_is_suspended_is_interrupted() -> None:
    direct = consumer()
    started, never = asyncio.Event(), asyncio.Event()

    async def blocked() -> None:
        started.set()
        await never.wait()

    handing = asyncio.ensure_future(direct.wait_first(blocked(), direct.suspend_flow.wait()))
    await asyncio.wait_for(started.wait(), 5)
    assert not handing.done()
    direct.stop_flow()
    outcome = await asyncio.wait_for(handing, 5)
    assert outcome.results == [None]
