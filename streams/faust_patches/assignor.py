"""Assignment: topics the leader's metadata does not show yet.

Assignment. Faust's assignor leaves out a topic the leader's metadata does not show yet
("Ignoring missing topic"); here such a topic is assigned by the partitions the app declared
it with (`PartitionAssignor`).

"""

import logging
from collections.abc import (
    Mapping,
)
from typing import Any

from faust.assignor import partition_assignor

log = logging.getLogger(__name__)


class PartitionAssignor(partition_assignor.PartitionAssignor):
    """Faust's assignor, which assigns a topic missing from the leader's metadata by the
    partitions the app declared it with, instead of leaving it out.

    A table's changelog created moments before the group's first rebalance could be missing
    from the leader's metadata then; Faust left it out of the assignment, so it was nobody's,
    active or standby, until the next rebalance. A worker killed and started again meanwhile
    rejoins as the same static member without a rebalance, gets that assignment back, and
    restores nothing of the table: the saga, finding no state for an order, ignored its
    `OrderCancelled` (kill-9: `reservation-saga` states stored `confirmed`, folded `cancelled`)."""

    def _get_copartitioned_groups(  # type: ignore[override]  # per app, not per class
            self, topics: Any, cluster: Any, subscriptions: Any) -> Any:
        declared = WithDeclared(cluster, declared_partitions(self.app))
        return super()._get_copartitioned_groups(topics, declared, subscriptions)


class WithDeclared:
    """Cluster metadata that answers for a topic it does not show yet with its declared
    partitions."""

    def __init__(self, cluster: Any, declared: Mapping[str, int]) -> None:
        self.cluster, self.declared = cluster, declared

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        found: set[int] | None = self.cluster.partitions_for_topic(topic)
        if not found and self.declared.get(topic):
            log.warning("%s is not in the metadata yet: assigned by its %s declared partitions",
                        topic, self.declared[topic])
            return set(range(self.declared[topic]))
        return found


def declared_partitions(app: Any) -> dict[str, int]:
    """Each topic the app's agents read and each table's changelog, by its partition count."""
    default = app.conf.topic_partitions
    found = {table.changelog_topic.get_topic_name(): table.changelog_topic.partitions or default
             for table in app.tables.values()}
    for channel in app.topics:
        for name in getattr(channel, "topics", ()):
            found.setdefault(name, channel.partitions or default)
    return found
