"""Clients' commands from HTTP requests, produced together: the ones submitted in one turn of
the event loop go to the commands topic as one producer batch per partition (`send_whole`),
without Faust's send path (future, buffer entry, sensors and callback per record), and each
request learns when the broker has its command, or why not."""

import asyncio
from functools import partial
from typing import Any

from streams import topics
from streams.app import app
from streams.faust_patches import Producer

TOPIC = topics.commands.get_topic_name()
Pending = dict[int, list[tuple[bytes, bytes, asyncio.Future[None]]]]
_pending: Pending = {}
_sending: set[asyncio.Task[None]] = set()


async def submit(key: bytes, value: bytes, partition: int) -> None:
    """Produce one command to `partition` of the commands topic; returns once the broker has
    acknowledged it, and raises what the send failed with."""
    loop = asyncio.get_running_loop()
    if not _pending:
        loop.call_soon(_send_pending)
    acked: asyncio.Future[None] = loop.create_future()
    _pending.setdefault(partition, []).append((key, value, acked))
    await acked


def _send_pending() -> None:
    pending = dict(_pending)
    _pending.clear()
    for partition, records in pending.items():
        task = asyncio.ensure_future(_send(partition, records))
        _sending.add(task)
        task.add_done_callback(_sending.discard)


async def _send(partition: int, records: list[tuple[bytes, bytes, asyncio.Future[None]]],
                ) -> None:
    acks = [acked for _, _, acked in records]
    try:
        sent = await producer().send_whole(TOPIC, partition,
                                         [(key, value) for key, value, _ in records])
    except Exception as exc:  # not handed over at all: no metadata, a closed producer
        for acked in acks:
            _settle(acked, exc)
        return
    start = 0
    for batch, count in sent:
        batch.add_done_callback(partial(_settle_all, acks[start:start + count]))
        start += count
    if start < len(acks):  # refused while out of the group: one failed future for them all
        sent[0][0].add_done_callback(partial(_settle_all, acks[start:]))


def _settle_all(acks: list[asyncio.Future[None]], done: Any) -> None:
    error = asyncio.CancelledError() if done.cancelled() else done.exception()
    for acked in acks:
        _settle(acked, error)


def _settle(acked: asyncio.Future[None], error: BaseException | None) -> None:
    if acked.done():
        return  # the request went away meanwhile
    if error is None:
        acked.set_result(None)
    else:
        acked.set_exception(error)


def producer() -> Producer:
    assert isinstance(app.producer, Producer)
    return app.producer
