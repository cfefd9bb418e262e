"""Which copy of a key's table partition this worker holds, and whether a read of it is fresh.

A row is fresh only when served by the partition's active owner once its recovery is done and
no rebalance is under way. A standby replica, an active still restoring its changelog, or a
copy read while the group rebalances can trail the owner: reads of it are flagged stale,
with how many changelog records the copy still lacks when that is known.
"""

from collections.abc import Mapping, Set
from dataclasses import dataclass

from faust.types import TP, TableT

from streams.app import app, settings
from streams.partitioning import owning_partition


@dataclass(frozen=True)
class Holding:
    """`role` is active, recovering, standby, rebalancing, lapsed (this worker has not heard
    from its group for longer than it may trust: it may have been replaced) or none;
    `behind` is the changelog records the copy lacks (None when unknown)."""

    role: str
    behind: int | None = None

    @property
    def fresh(self) -> bool:
        return self.role == "active"

    @property
    def local(self) -> bool:
        """A copy this worker may serve (flagged stale unless fresh)."""
        return self.role != "none"


def holding_of(tp: TP, actives: Set[TP], standbys: Set[TP], rebalancing: bool,
               active_remaining: Mapping[TP, int],
               standby_remaining: Mapping[TP, int], lapsed: bool = False) -> Holding:
    """What this worker holds of the changelog partition `tp`, from its assignment, its
    recovery's books and its group membership lease."""
    if tp in actives and lapsed:
        return Holding("lapsed", None)
    if tp in actives:
        remaining = active_remaining.get(tp, 0)
        if remaining > 0:
            return Holding("recovering", remaining)
        return Holding("rebalancing", None) if rebalancing else Holding("active", 0)
    if tp in standbys:
        remaining = standby_remaining.get(tp)
        return Holding("standby", remaining if remaining is not None and remaining >= 0 else None)
    return Holding("none")


def holding(table: TableT, key: str) -> Holding:
    """What this worker holds of the partition of `table` that `key` belongs to."""
    tp = TP(table.changelog_topic.get_topic_name(), owning_partition(key, settings.partitions))
    recovery = app.tables.recovery
    return holding_of(tp, app.assignor.assigned_actives(), app.assignor.assigned_standbys(),
                      bool(app.rebalancing or app.in_recovery),
                      recovery.active_remaining(), recovery.standby_remaining(),
                      app.consumer.membership.lapsed())
