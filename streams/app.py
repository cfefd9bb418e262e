"""The Faust app, configured from the settings."""

import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import faust
from faust import EventT, TopicT

from streams import collector, faust_patches, restore
from streams.kafka_clients import check_credentials, faust_credentials
from streams.settings import Settings
from streams.store import discard_after_crash, mark_clean_stop

settings = Settings.from_env()
log = logging.getLogger(__name__)


class App(faust_patches.App):
    """Faust's app, which also declares the project's topics before anything can use them.

    Faust declares only the internal topics an agent subscribes to; the command-results
    and dead-letter topics are written but never read here, and a topic that a producer
    creates by accident gets the broker's default partition count.
    """

    project_topics: list[TopicT]

    async def on_first_start(self) -> None:
        await check_credentials(settings)  # refused credentials stop the worker, loudly
        self.conf.datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
        discard_after_crash(Path(self.conf.tabledir))
        collector.set_thresholds(settings.gc_threshold)
        await super().on_first_start()

    async def on_stop(self) -> None:
        deadline = threading.Timer(settings.stop_timeout, give_up_stopping)
        deadline.daemon = True
        deadline.start()
        await super().on_stop()

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        mark_clean_stop(Path(self.conf.tabledir))

    async def on_started(self) -> None:
        await super().on_started()
        if settings.gc_freeze:
            collector.freeze_start_up()

    async def on_start(self) -> None:
        await super().on_start()
        for topic in self.project_topics:
            await topic.maybe_declare()


def give_up_stopping() -> None:
    """A stop that cannot finish (Kafka gone: the last sends and commits wait for it) ends
    the process without the clean-stop mark, so the next start restores the tables from
    their changelogs rather than trusting rows whose changelog records may not be sent."""
    log.error("could not stop within SHOPSTREAM_STOP_TIMEOUT=%s s (is Kafka reachable?): "
              "exiting; the tables will be restored from their changelogs at the next start",
              settings.stop_timeout)
    logging.shutdown()
    os._exit(1)


app = App(
    settings.topic_prefix,
    broker=settings.broker,
    broker_credentials=faust_credentials(settings),
    store=settings.store,
    datadir=str(settings.data_dir),
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication,
    table_standby_replicas=settings.standby_replicas,
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=settings.heartbeat_interval,
    broker_rebalance_timeout=settings.rebalance_timeout,
    consumer_group_instance_id=settings.instance_id,
    web_bind=settings.web_host,
    web_port=settings.web_port,
    canonical_url=settings.advertised_url,
    web_in_thread=False,
    # Faust's own pages (/router, /table, /graph, /stats, /assignment, /performance) show
    # table data, topology and internals to anyone: none is served. Routing reads the
    # assignor's metadata in-process and does not need /router.
    web_router_enabled=False,
    web_tables_enabled=False,
    web_graph_enabled=False,
    web_stats_enabled=False,
    web_metrics_enabled=False,
    consumer_auto_offset_reset="earliest",
    producer_acks=-1,
    producer_request_timeout=settings.send_timeout,
    producer_linger_ms=settings.linger_ms,
    producer_max_batch_size=256 * 1024,
    broker_max_poll_records=2000,
    autodiscover=False,
    Table=faust_patches.Table,
    Stream=faust_patches.Stream,
    PartitionAssignor=faust_patches.PartitionAssignor,
    TableManager=restore.TableManager,
    loghandlers=[],
)
app.project_topics = []
app.whole_standbys = settings.whole_standbys


def bytes_table(name: str) -> faust.Table:
    """A RocksDB table of raw bytes, co-partitioned with the project's topics."""
    return app.Table(name, partitions=settings.partitions, key_type=bytes, value_type=bytes)


async def ensure_member() -> None:
    """Go on only while this worker surely still belongs to its group; raises
    `streams.membership.Fenced` when it does not (see there)."""
    consumer = app.consumer
    await consumer.membership.ensure(lambda: app.rebalancing or not consumer.flow_active)


def leave_unhandled(records: Iterable[EventT]) -> None:
    app.consumer.leave_unhandled(record.message for record in records)
