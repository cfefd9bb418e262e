"""Every worker follows the whole dead-letter topic, so `/health` can say whether any dead
letter, parked by any worker, still waits to be replayed or discarded."""

import asyncio
import logging

from aiokafka import AIOKafkaConsumer

from streams import topics
from streams.app import app, settings
from streams.dead_letters import Ledger
from streams.kafka_clients import client_options

log = logging.getLogger(__name__)
LEDGER = Ledger()
RESTART_AFTER = 5.0


@app.task
async def watch_dead_letters() -> None:
    while True:
        consumer = AIOKafkaConsumer(topics.dead_letters.get_topic_name(), group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    **client_options(settings))
        try:
            await consumer.start()
            async for record in consumer:
                LEDGER.observe(record.value)
        except asyncio.CancelledError:
            raise
        except Exception:  # reading again from the start rebuilds the same ledger
            log.exception("following the dead-letter topic failed; starting again")
        finally:
            await consumer.stop()
        await asyncio.sleep(RESTART_AFTER)
