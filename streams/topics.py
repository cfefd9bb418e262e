"""The project's topics: raw bytes in and out, parsed by each consumer inside its own guard."""

from faust import TopicT

from streams.app import app, settings
from streams.faust_patches import RESENT_TOPICS


def _topic(name: str, partitions: int | None = None, **config: str) -> TopicT:
    topic = app.topic(
        settings.topic(name),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions or settings.partitions,
        internal=True,
        config=config or None,
    )
    app.project_topics.append(topic)
    return topic


def repartition(name: str) -> TopicT:
    """A topic carrying events re-keyed for a view keyed other than by aggregate id."""
    return _topic(f"{name}-repartition")


def repartition_name(name: str) -> str:
    """The name of `repartition(name)`, without declaring the topic."""
    return settings.topic(f"{name}-repartition")


commands = _topic("commands")
internal_commands = _topic("internal-commands")  # written by the saga only
# Both command topics, read by the command handler as one stream: one batch decides them in
# order against the same aggregates' state.
all_commands = app.topic(
    commands.get_topic_name(), internal_commands.get_topic_name(),
    key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
    partitions=settings.partitions, internal=True,
)
events = _topic("events", **{"retention.ms": "-1", "cleanup.policy": "delete"})
command_results = _topic("command-results")
RESENT_TOPICS.add(command_results.get_topic_name())  # a result is whole by itself
dead_letters = _topic("dead-letters", **{"retention.ms": "-1"})
reservation_saga = _topic("reservation-saga")
view_aliases = _topic("view-aliases", 1, **{"cleanup.policy": "compact"})  # see tables.catalog
