"""The Faust app, configured from the settings."""

import faust
from faust import TopicT

from streams.settings import Settings

settings = Settings.from_env()

# RocksDB's per-database defaults (2 GB block cache, 3 x 64 MB write buffers) are
# sized for one big database; we open one per table partition on a small machine.
ROCKSDB_OPTIONS = {
    "block_cache_size": 16 * 1024 * 1024,
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "max_open_files": 256,
}



class App(faust.App):
    """Faust's app, which also declares the project's topics before anything can use them.

    Faust declares only the internal topics an agent subscribes to; the command-results
    and dead-letter topics are written but never read here, and a topic that a producer
    creates by accident gets the broker's default partition count.
    """

    project_topics: list[TopicT]

    async def on_first_start(self) -> None:
        self.conf.datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
        await super().on_first_start()

    async def on_start(self) -> None:
        await super().on_start()
        for topic in self.project_topics:
            await topic.maybe_declare()


app = App(
    settings.topic_prefix,
    broker=settings.broker,
    store=settings.store,
    datadir=str(settings.data_dir),
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication,
    table_standby_replicas=settings.standby_replicas,
    web_bind=settings.web_host,
    web_port=settings.web_port,
    canonical_url=settings.advertised_url,
    web_in_thread=False,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    rocksdb_options=ROCKSDB_OPTIONS,
    autodiscover=False,
    loghandlers=[],
)
app.project_topics = []


def bytes_table(name: str) -> faust.Table:
    """A RocksDB table of raw bytes, co-partitioned with the project's topics."""
    return app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes)
