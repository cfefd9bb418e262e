"""Following a whole topic from its start on every worker, with a group-less consumer, for
as long as the worker runs: what is read again after a failure rebuilds the same state."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer

from streams.app import settings
from streams.kafka_clients import client_options

log = logging.getLogger(__name__)


async def follow_from_start(topic: str, follow: Callable[[AIOKafkaConsumer], Awaitable[None]],
                            restart_after: float) -> None:
    while True:
        consumer = AIOKafkaConsumer(topic, group_id=None, auto_offset_reset="earliest",
                                    enable_auto_commit=False, **client_options(settings))
        try:
            await consumer.start()
            await follow(consumer)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following %s failed; starting again from its start", topic)
        finally:
            await consumer.stop()
        await asyncio.sleep(restart_after)
