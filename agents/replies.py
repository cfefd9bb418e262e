"""Every worker follows the command-results topic from its end with a group-less consumer, so a
`POST /commands` that waits is answered from the result record itself, on the worker it came
to: no hop to the owner of the result's partition, no wait on the results view."""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams import topics
from streams.app import app, settings
from streams.kafka_clients import client_options

log = logging.getLogger(__name__)
RESTART_AFTER = 1.0
FETCH_MAX_WAIT_MS = 100


class Replies:
    """The results that requests on this worker wait for, by command id."""

    def __init__(self) -> None:
        self.waiting: dict[bytes, list[asyncio.Future[bytes]]] = {}
        self.following = False

    def expect(self, command_id: str) -> asyncio.Future[bytes] | None:
        """A future for the command's result, or None while no result can be seen (the
        caller then asks the results view): call before the command is sent."""
        if not self.following:
            return None
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(command_id.encode(), []).append(future)
        return future

    def forget(self, command_id: str, future: asyncio.Future[bytes]) -> None:
        key = command_id.encode()
        futures = self.waiting.get(key, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            self.waiting.pop(key, None)

    def observe(self, key: bytes | None, value: bytes | None) -> None:
        futures = self.waiting.pop(key, None) if key is not None else None
        for future in futures or ():
            if not future.done() and value is not None:
                future.set_result(value)

    def lost(self) -> None:
        """Results may pass unseen from now on: every waiter asks the results view instead."""
        self.following = False
        waiting, self.waiting = self.waiting, {}
        for future in (f for futures in waiting.values() for f in futures):
            if not future.done():
                future.set_exception(ConnectionError("stopped following the results"))


REPLIES = Replies()


@app.task
async def follow_results() -> None:
    topic = topics.command_results.get_topic_name()
    while True:
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False,
                                    fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
                                    **client_options(settings))
        try:
            await consumer.start()
            await _follow(consumer, topic)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following %s for waiting requests failed; starting again", topic)
        finally:
            REPLIES.lost()
            await consumer.stop()
        await asyncio.sleep(RESTART_AFTER)


async def _follow(consumer: AIOKafkaConsumer, topic: str) -> None:
    """From the end of every partition: a request registers before it sends its command, so
    its result comes after the positions taken here."""
    partitions = [TopicPartition(topic, number)
                  for number in range(topics.command_results.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)
    REPLIES.following = True
    while True:
        batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        if REPLIES.waiting:
            for records in batches.values():
                for record in records:
                    REPLIES.observe(record.key, record.value)
