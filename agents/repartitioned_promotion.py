"""A built version of a view fed through a repartition topic (`customer-orders`) made resident
by a deploy: folding into each repartition partition the events its build had not reached.

Its Faust table restores from the built changelog (`tables.storage`), partitioned as the
repartition topics are, so the rows of partition Q reach along event-log partition S as far as
the build's fold committed for Q in its metadata, P(Q, S) (`agents.version_repartition`). The
resident path folds what the app forwards, from the app group's committed offset on each
event-log partition, A(S), into the version's own resident repartition topic, which is new
with the deploy and read from its start. So when the table is restored after an assignment,
before any stream resumes (Faust's `on_recover`), every event-log partition S is read from the
least P(Q, S) over the partitions Q owned here up to A(S) as the app group has it then, and
each event is folded into its key's row in the partition Q that owns the key, if owned here.

Nothing is missed: forwarding into the new topic began at an offset no greater than A(S) read
later (committed offsets only move on). What the build and this, or this and the agent, both
fold changes nothing the second time: a customer's row records the version of every order it
reflects, and `tables.view.apply` skips an event it has (an order's events are on one
event-log partition, in version order). Then the build's fold group is committed on Q with the
metadata `resident`, and later assignments have nothing to do; a crash before that folds the
same events again, to the same rows.
"""

import logging
from functools import partial

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from agents.promotion import (
    RESIDENT,
    commit,
    committed,
    fold_gap,
    owned,
    promote_retrying,
    read_range,
)
from agents.repartition import REPARTITIONED
from agents.version_repartition import (
    Reached,
    decode_reached,
    fold_group_of,
    folded_positions,
    repartition_of,
)
from streams import topics
from streams.app import app, settings
from streams.envelopes import Event
from streams.partitioning import owning_partition
from tables.progress import progress
from tables.registry import VIEWS, promoted
from tables.storage import VIEW_TABLES
from tables.view import View

log = logging.getLogger(__name__)
PROMOTED = [view for view in VIEWS.values() if promoted(view) and not view.by_aggregate]


async def promote_owned(view: View) -> None:
    """Bring the version's repartition partitions owned here up to the app group's offsets
    on every event-log partition."""
    await promote_retrying(view, promote, owned(REPARTITIONED[view.name].get_topic_name()))


async def promote(view: View, tps: list[TopicPartition]) -> None:
    built_tps = [TopicPartition(repartition_of(view), tp.partition) for tp in tps]
    built = await committed(fold_group_of(view), built_tps)
    pending = [tp for tp in built_tps if tp not in built or built[tp].metadata != RESIDENT]
    if not pending:
        return
    reached = {tp.partition: decode_reached(built[tp].metadata) if tp in built else {}
               for tp in pending}
    sources = [TopicPartition(topics.events.get_topic_name(), s)
               for s in range(settings.partitions)]
    resident = await committed(str(app.conf.id), sources)
    ends = {tp.partition: max(resident[tp].offset, 0) if tp in resident else 0
            for tp in sources}
    starts = folded_positions(reached, sorted(ends))
    read = changed = 0
    for source in sources:
        async for events in read_range(source, starts[source.partition],
                                       ends[source.partition]):
            read += len(events)
            changed += await fold_into_owners(view, set(reached), events)
    await commit(fold_group_of(view), {
        tp: OffsetAndMetadata(built[tp].offset if tp in built else 0, RESIDENT)
        for tp in pending})
    for partition, known in reached.items():
        for source, offset in rows_reach(known, ends).items():
            progress.reached(view.name, partition, source, offset)
    log.info("%s made resident on repartition partitions %s: the %s events from the build's "
             "positions %s to the app's %s changed %s rows", view.table_name, sorted(reached),
             read, starts, ends, changed)


async def fold_into_owners(view: View, held: set[int], events: list[Event]) -> int:
    """Fold each event into its key's row, in the partitions held here that own a key of it."""
    keyed: dict[int, list[tuple[str, Event]]] = {partition: [] for partition in held}
    for event in events:
        if event.type not in view.handles:
            continue
        try:
            keys = view.keys(event)
        except Exception:  # its build skipped it too; the old resident agent parked it
            log.warning("%s cannot key event %s", view.table_name, event.event_id)
            continue
        for key in keys:
            partition = owning_partition(key, settings.partitions)
            if partition in keyed:
                keyed[partition].append((key, event))
    return sum([await fold_gap(view, partition, pairs)
                for partition, pairs in keyed.items() if pairs])


def rows_reach(built: Reached, ends: dict[int, int]) -> Reached:
    """Per event-log partition, the last offset a partition's rows reflect once its gap is
    folded: as far as its build had, or the app group's offset, whichever is further."""
    reach = {source: max(built.get(source, -1), end - 1) for source, end in ends.items()}
    return {source: offset for source, offset in reach.items() if offset >= 0}


for _view in PROMOTED:
    VIEW_TABLES[_view.name].on_recover(partial(promote_owned, _view))
