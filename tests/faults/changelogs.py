"""Whether any table's changelog had a row written back: a record for a key that has come
less far (`streams.store.progress_of`) than a record for that key before it.

A worker that acts on state it no longer owns (a zombie back from a pause) writes exactly
that: its older row lands after the new owner's newer one.
"""

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient

from ops.verify import read_topic
from streams.store import progress_of


def written_back(records: Iterable[tuple[int, int, bytes | None, bytes | None]]
                 ) -> list[str]:
    """(partition, offset, key, value) in offset order per partition -> each write-back."""
    furthest: dict[tuple[int, bytes | None], tuple[int, int]] = {}
    found = []
    for partition, offset, key, value in records:
        slot = (partition, key)
        if value is None:  # a deletion: what comes next starts afresh
            furthest.pop(slot, None)
            continue
        progress = progress_of(value)
        if progress is None:
            continue
        before = furthest.get(slot)
        if before is not None and progress < before[0]:
            found.append(f"[{partition}] key {key!r}: offset {offset} at {progress} after "
                         f"offset {before[1]} at {before[0]}")
        else:
            furthest[slot] = (progress, offset)
    return found


async def changelog_write_backs(bootstrap: str, prefix: str) -> list[str]:
    """Every write-back in the changelogs of the app `prefix`, named by topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = sorted(t for t in await admin.list_topics()
                        if t.startswith(f"{prefix}-") and t.endswith("-changelog"))
    finally:
        await admin.close()
    found = []
    for topic in topics:
        records = await read_topic(bootstrap, topic)
        ordered = sorted(records, key=lambda r: (r.partition, r.offset))
        found += [f"{topic}{problem}" for problem in written_back(
            (r.partition, r.offset, r.key, r.value) for r in ordered)]
    return found
