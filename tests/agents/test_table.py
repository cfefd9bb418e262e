"""A changelog just created may show 0 partitions for a moment: not a mismatch to fail on."""

import pytest
from faust.exceptions import PartitionsMismatch

from streams import topics
from streams.app import app
from tables.storage import VIEW_TABLES


def test_a_changelog_not_yet_in_the_metadata_is_checked_again_later_a_real_mismatch_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = VIEW_TABLES["orders"]
    source = topics.events.get_topic_name()
    counts = {source: 4, table.changelog_topic_name: 0}
    monkeypatch.setattr(app.consumer, "topic_partitions", counts.get)
    monkeypatch.setattr(table, "_verified_source_topics_for_partitions", set())
    table._verify_source_topic_partitions(source)
    assert table._verified_source_topics_for_partitions == set()
    counts[table.changelog_topic_name] = 8
    with pytest.raises(PartitionsMismatch):
        table._verify_source_topic_partitions(source)
    counts[table.changelog_topic_name] = 4
    table._verify_source_topic_partitions(source)
    assert table._verified_source_topics_for_partitions == {source}
