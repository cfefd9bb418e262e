"""Recovery: Faust's, waiting for the bulk restore (streams/restore.py).

Bulk restore. Faust restores a table partition one changelog record at a time (fetcher,
conductor, its recovery loop re-checking every assigned partition per record): about 9,000
rows/s. Here a restorer (streams/restore.py) starts with each rebalance, and Faust's recovery,
whose every step goes through `Recovery._wait`, waits there for it before its first step
(untimed; a newer rebalance still interrupts the wait as it does every step). Faust's recovery
then reads from the offsets the restorer stored. A revocation cancels the restorer before
Faust's stores close the revoked partitions' databases, so nothing is written for a partition
no longer held.
"""

import asyncio
import logging
from collections.abc import (
    Awaitable,
    Callable,
    Mapping,
)
from typing import Any, cast

from faust.stores import rocksdb
from faust.tables import manager, recovery
from faust.types import TP, StoreT

log = logging.getLogger(__name__)



Restorer = Callable[[Mapping[TP, Any], Callable[[], bool]], Awaitable[None]]
"""Brings the stores of the given changelog partitions up to their changelog's end (or part of
the way); the callable says whether the rebalance it restores for is still the current one."""


class Recovery(recovery.Recovery):
    """Faust's recovery, which starts reading only when the restorer has written what it could."""

    def __init__(self, app: Any, tables: Any, *, restorer: Restorer | None = None,
                 **kwargs: Any) -> None:
        super().__init__(app, tables, **kwargs)
        self.restorer = restorer
        self.restoring: asyncio.Task[None] | None = None

    def on_partitions_revoked(self, revoked: set[TP]) -> None:
        if self.restoring is not None:
            self.restoring.cancel()
        super().on_partitions_revoked(revoked)

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP],
                           newly_assigned: set[TP], generation_id: int = 0) -> None:
        await self.stop_restoring()
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        if self.restorer is None or generation_id != self.app.consumer_generation_id:
            return
        stores = {tp: cast(Any, self.tp_to_table[tp]).data
                  for tp in self.active_tps | self.standby_tps}
        self._set_recovery_started()  # /ready says "recovering" from here
        self.restoring = asyncio.ensure_future(self.restore(stores, generation_id))

    async def restore(self, stores: Mapping[TP, Any], generation_id: int) -> None:
        assert self.restorer is not None
        try:
            await self.restorer(stores,
                                lambda: self.app.consumer_generation_id == generation_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("bulk restore failed: Faust's recovery reads the changelogs instead")
        for tp, store in stores.items():
            offset = store.persisted_offset(tp)
            if offset is not None:
                offsets = self.active_offsets if tp in self.active_tps else self.standby_offsets
                offsets[tp] = offset

    async def _wait(self, coro: Any, timeout: Any = None) -> None:
        restoring = self.restoring
        if restoring is not None and (not restoring.done() or restoring.cancelled()):
            try:
                await super()._wait(self.restored(restoring))
            except BaseException:
                if asyncio.iscoroutine(coro):
                    coro.close()  # the step interrupted before it began
                raise
        await super()._wait(coro, timeout=timeout)

    @staticmethod
    async def restored(restoring: asyncio.Task[None]) -> None:
        """Until the restore is done. A restore cancelled by a revocation holds Faust's
        recovery until the next assignment's start signal interrupts it: let through, Faust's
        recovery of the old assignment ran on in the middle of the rebalance and resumed the
        streams on it (commands decided twice, rows written back in scale-1-2-3-1)."""
        await asyncio.wait([restoring])  # never raises the task's own error
        if restoring.cancelled():
            await asyncio.Event().wait()

    async def stop_restoring(self) -> None:
        restoring, self.restoring = self.restoring, None
        if restoring is not None:
            restoring.cancel()
            await asyncio.gather(restoring, return_exceptions=True)

    async def on_stop(self) -> None:
        await self.stop_restoring()
        await super().on_stop()


class TableManager(manager.TableManager):
    """Faust's table manager, whose recovery runs `restore_in_bulk` first. It starts without
    Faust's one-second pause (for tables added late: the app's are all made at import)."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = Recovery(self.app, self, restorer=self.restore_in_bulk,
                                      beacon=self.beacon, loop=self.loop)
        assert isinstance(self._recovery, Recovery)
        return self._recovery

    async def restore_in_bulk(self, stores: Mapping[TP, Any], current: Callable[[], bool]) -> None:
        """Nothing here: Faust's recovery reads the changelogs alone."""


def partition_database(store: StoreT[Any, Any], partition: int) -> Any:
    """The RocksDB database of one partition of `store`, opened if it is not yet."""
    assert isinstance(store, rocksdb.Store)
    return store._db_for_partition(partition)
