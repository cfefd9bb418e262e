"""Whether this worker may still act for the partitions it was given.

A worker stopped for longer than the group's session timeout (SIGSTOP, a paused VM, a long
stall) has been replaced: its partitions went to other workers, which restored the tables
and went on. When it runs again it still holds records it fetched before, and at-least-once
Kafka does not stop it from handling them on state that others now own (two events at one
version, a view row written back to an older value). So the worker fences itself.

Its membership is a lease, renewed by every heartbeat the group coordinator answers and by
every assignment, and trusted for the session timeout less a margin. Agents check it before
they handle a batch and before they write. Past it, they wait: for a heartbeat (the worker
was only slow), or for the rebalance that comes for a replaced member. Then the batch is
left unhandled and unacknowledged, so its offsets are never committed here and whoever owns
the partitions now handles it.

A lapsed lease is not proof: a broker that was away also leaves heartbeats unanswered. What
is proof is a stop of the whole process past the session timeout (SIGSTOP, a frozen VM): no
heartbeat reached the coordinator, which expelled the member. Records this worker had handed
to its producer before such a stop would go out when it runs again, after the new owners'
(an event at a version written twice, a view row written back). So a stop is watched for
too: the event loop's ticks leave a gap, and the lease lapsed, both longer than the session
timeout. From then until its next assignment the worker's producer refuses every record,
those it held already included (`streams.faust_patches.Producer`).
"""

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

TICK = 0.25
"""Seconds between two ticks of the event loop's stop watch."""

MARGIN = 2.0
"""Seconds taken off the session timeout: the coordinator's clock started before our reply."""


class Fenced(Exception):
    """The worker's membership lapsed and a rebalance began: the batch must be left alone."""


class Membership:
    def __init__(self, session_timeout: float, clock: Callable[[], float] = time.monotonic):
        self.trusted_for = session_timeout - MARGIN
        self.clock = clock
        self.session_timeout = session_timeout
        self.renewed_at: float | None = None  # no lease before the first assignment
        self.ticked_at: float | None = None
        self.stopped_at: float | None = None

    def assigned(self) -> None:
        """A new assignment: the worker is a member again, with the state it restores."""
        self.stopped_at = None
        self.renew()

    def tick(self) -> None:
        """The event loop runs: called often (see `TICK`); a gap between two calls longer
        than the session timeout, with no heartbeat answered meanwhile, was a stop."""
        self.is_stopped()
        self.ticked_at = self.clock()

    def is_stopped(self) -> bool:
        """Whether this process was stopped past its session since its last assignment."""
        if self.stopped_at is not None:
            return True
        if self.ticked_at is None or self.renewed_at is None:
            return False
        now = self.clock()
        if (now - self.ticked_at > self.session_timeout
                and now - self.renewed_at > self.session_timeout):
            self.stopped_at = now
            log.error("this worker was stopped for %.1f s, past the session timeout: it is out "
                      "of its group and sends nothing until it is assigned partitions again",
                      now - self.ticked_at)
        return self.stopped_at is not None

    def renew(self) -> None:
        self.renewed_at = self.clock()

    def silent_for(self) -> float:
        return 0.0 if self.renewed_at is None else self.clock() - self.renewed_at

    def lapsed(self) -> bool:
        return self.silent_for() > self.trusted_for

    async def ensure(self, rebalancing: Callable[[], bool], poll: float = 0.05) -> None:
        """Return while the lease runs or once renewed; raise Fenced if a rebalance begins
        first."""
        if not self.lapsed():
            return
        log.warning("no word from the group coordinator for %.1f s: holding until it answers "
                    "or the group rebalances", self.silent_for())
        while self.lapsed():
            if rebalancing():
                log.error("membership lapsed and the group is rebalancing: leaving the batch "
                          "to the partitions' new owner")
                raise Fenced()
            await asyncio.sleep(poll)
        log.warning("the group coordinator answered again: going on")
