"""Which copy of a key's table partition this worker holds, and whether a read of it is fresh.

A row is fresh only when served by the partition's active owner once its recovery is done, no
rebalance is under way, and its view has folded its input as far as the input reached when
this worker was assigned the partition: the previous owner may have shown readers rows its
changelog never got (it died or was stopped before sending them), which this owner folds
again from the input. A standby replica, an active still restoring its changelog, or a
copy read while the group rebalances can trail the owner: reads of it are flagged stale,
with how many changelog records the copy still lacks when that is known.
"""

from collections.abc import Mapping, Set
from dataclasses import dataclass

from faust.types import TP, TableT

from agents.repartition import INPUT_TOPIC
from streams.app import app, settings
from streams.partitioning import owning_partition
from tables.progress import progress


@dataclass(frozen=True)
class Holding:
    """`role` is active, recovering, catching-up (folding again input the previous owner
    had folded), standby, rebalancing, lapsed (this worker has not heard from its group for
    longer than it may trust: it may have been replaced) or none; `behind` is what the copy
    lacks: changelog records, or for catching-up input records (None when unknown)."""

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


def holding(table: TableT, key: str, view: str | None = None) -> Holding:
    """What this worker holds of the partition of `table` that `key` belongs to; given the
    view the table is of, an active copy is fresh only once it has caught up."""
    partition = owning_partition(key, settings.partitions)
    tp = TP(table.changelog_topic.get_topic_name(), partition)
    recovery = app.tables.recovery
    held = holding_of(tp, app.assignor.assigned_actives(), app.assignor.assigned_standbys(),
                      bool(app.rebalancing or app.in_recovery),
                      recovery.active_remaining(), recovery.standby_remaining(),
                      app.consumer.membership.lapsed())
    if held.fresh and view is not None:
        behind = still_to_fold(view, partition, app.consumer.ends_at_assignment,
                               progress.applied.get((view, partition)),
                               app.consumer.committed_offset(TP(INPUT_TOPIC[view], partition)))
        if behind != 0:
            return Holding("catching-up", behind)
    return held


def still_to_fold(view: str, partition: int, ends: Mapping[TP, int] | None,
                  applied: int | None, committed: int | None) -> int | None:
    """How many records of its input partition the view must still fold to reach where the
    input ended when this worker was assigned it; 0 when it has, None when unknown yet."""
    if ends is None:
        return None
    end = ends.get(TP(INPUT_TOPIC[view], partition))
    if end is None:
        return 0
    reached = max(applied + 1 if applied is not None else 0, committed or 0)
    return max(0, end - reached)
