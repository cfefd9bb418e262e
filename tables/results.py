"""The command-results view: each command's first result by command id, for
GET /commands/{id}, and waiting for a result that has not arrived yet.

A waiter is woken by the results agent when its own command's result is recorded
(`recorded`), not by every batch folded on its partition: with many requests waiting on a
partition, each batch used to wake them all to read RocksDB again."""

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from streams.app import bytes_table, settings
from streams.envelopes import CommandResult
from streams.faust_patches import partition_value
from streams.partitioning import owning_partition

NAME = "command-results"
RESULTS = bytes_table(f"{NAME}-v1")
WAITING: defaultdict[bytes, set[asyncio.Future[None]]] = defaultdict(set)
"""By command id: the requests waiting for its result on this worker."""


def result_of(command_id: str) -> CommandResult | None:
    raw = partition_value(RESULTS, owning_partition(command_id, settings.partitions),
                          command_id.encode())
    return CommandResult.model_validate_json(raw) if raw is not None else None


async def wait_for_result(command_id: str, timeout: float) -> CommandResult | None:
    """The command's result, once recorded here, or None after `timeout` seconds. A result
    this worker did not record itself (restored from the changelog while the wait went on)
    is found by the last look, at the timeout."""
    result = result_of(command_id)
    if result is not None or timeout <= 0:
        return result
    key = command_id.encode()
    woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    WAITING[key].add(woken)
    try:
        await asyncio.wait_for(woken, timeout)
    except TimeoutError:
        pass
    finally:
        waiters = WAITING.get(key)
        if waiters is not None:
            waiters.discard(woken)
            if not waiters:
                del WAITING[key]
    return result_of(command_id)


def recorded(command_ids: Iterable[bytes]) -> None:
    """Wake whoever waits for these commands' results, now in the view."""
    if not WAITING:
        return
    for key in command_ids:
        for woken in WAITING.pop(key, ()):
            if not woken.done():
                woken.set_result(None)
