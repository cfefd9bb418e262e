"""The assignment covers every table's changelog, also one the leader's metadata does not
show yet (streams/faust_patches/, `PartitionAssignor`)."""

from typing import Any

import agents.saga_agent  # noqa: F401  (registers the saga table and its topic)
from streams.app import app, settings
from streams.faust_patches import declared_partitions

SAGA_CHANGELOG = f"{settings.topic_prefix}-reservation-saga-changelog"


class Metadata:
    """Cluster metadata from moments after a changelog was created: not in it yet."""

    def __init__(self, missing: str) -> None:
        self.missing = missing

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return None if topic == self.missing else set(range(settings.partitions))


def assigned(assignment: Any, topic: str) -> list[int]:
    return sorted(p for name, partitions in assignment.assignment if name == topic
                  for p in partitions)


def test_a_changelog_missing_from_the_leaders_metadata_is_assigned_all_the_same() -> None:
    topics = set(declared_partitions(app))
    assert SAGA_CHANGELOG in topics
    member = app.assignor.metadata(topics)
    assignments = app.assignor._perform_assignment(Metadata(SAGA_CHANGELOG),
                                                   {"one": member, "two": member})
    saga = {p for assignment in assignments.values() for p in assigned(assignment, SAGA_CHANGELOG)}
    assert saga == set(range(settings.partitions))
