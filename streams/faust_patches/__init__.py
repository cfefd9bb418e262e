"""Every change to Faust's private internals, in one package (faust-streaming 0.15.3).

Each patch names the Faust behaviour it works around; tests/agents/test_faust_patches.py
fails if an upgrade changes the upstream code a patch relies on. The rest of the project
imports from here, not from the modules:

- `consumer`: offsets kept straight across rebalances, the group membership lease, the
  hand-off, whole fetches, standbys applied a fetch at a time, leaving on a clean stop;
- `producer`: flushes that wait for every record, batches sent again, fencing;
- `tables`: standby copies kept current, the current event, reads of one partition's database;
- `batches`: `take_events` without a timer;
- `assignor`: topics the leader's metadata does not show yet;
- `recovery`: Faust's recovery waiting for the bulk restore;
- `app`: the app and the transport that hand Faust our consumer and producer.
"""

from streams.faust_patches.app import App, Transport
from streams.faust_patches.assignor import PartitionAssignor, declared_partitions
from streams.faust_patches.batches import Stream
from streams.faust_patches.consumer import FETCH_WAIT_MS, WHOLE_FETCHES, Consumer, leaving_on_close
from streams.faust_patches.producer import (
    RESENT_TOPICS,
    Buffer,
    Producer,
    fence_accumulator,
    track_every_topic,
)
from streams.faust_patches.recovery import Recovery, TableManager, partition_database
from streams.faust_patches.tables import (
    Table,
    as_current,
    estimated_keys,
    partition_items,
    partition_value,
    stored_value,
)

__all__ = [
    "FETCH_WAIT_MS", "RESENT_TOPICS", "WHOLE_FETCHES", "App", "Buffer", "Consumer",
    "PartitionAssignor", "Producer", "Recovery", "Stream", "Table", "TableManager", "Transport",
    "as_current", "declared_partitions", "estimated_keys", "fence_accumulator", "leaving_on_close",
    "partition_database", "partition_items", "partition_value", "stored_value",
    "track_every_topic",
]
