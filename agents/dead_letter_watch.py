"""Every worker follows the whole dead-letter topic, so `/health` can say whether any dead
letter, parked by any worker, still waits to be replayed or discarded."""

from aiokafka import AIOKafkaConsumer

from agents.following import follow_from_start
from streams import topics
from streams.app import app
from streams.dead_letters import Ledger

LEDGER = Ledger()
RESTART_AFTER = 5.0


@app.task
async def watch_dead_letters() -> None:
    await follow_from_start(topics.dead_letters.get_topic_name(), _observe, RESTART_AFTER)


async def _observe(consumer: AIOKafkaConsumer) -> None:
    async for record in consumer:
        LEDGER.observe(record.value)
