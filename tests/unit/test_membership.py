"""The membership lease: trusted for the session timeout less a margin, renewed by heartbeats
and assignments; past it, agents wait for a renewal or are fenced by the rebalance."""

import asyncio

import pytest

from streams.membership import MARGIN, Fenced, Membership


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_there_is_nothing_to_lose_before_the_first_assignment() -> None:
    clock = Clock()
    membership = Membership(10.0, clock)
    clock.now += 3600
    assert not membership.lapsed()


def test_the_lease_lapses_a_margin_before_the_coordinator_gives_up_on_the_worker() -> None:
    clock = Clock()
    membership = Membership(10.0, clock)
    membership.renew()
    clock.now += 10.0 - MARGIN
    assert not membership.lapsed()
    clock.now += 0.1
    assert membership.lapsed()
    membership.renew()
    assert not membership.lapsed()


async def test_a_running_lease_lets_the_batch_through_at_once() -> None:
    membership = Membership(10.0)
    membership.renew()
    await asyncio.wait_for(membership.ensure(lambda: True), 1)


async def test_a_lapsed_lease_holds_the_batch_until_a_heartbeat_renews_it() -> None:
    clock = Clock()
    membership = Membership(10.0, clock)
    membership.renew()
    clock.now += 60
    holding = asyncio.ensure_future(membership.ensure(lambda: False, poll=0.001))
    await asyncio.sleep(0.02)
    assert not holding.done()
    membership.renew()
    await asyncio.wait_for(holding, 1)


async def test_a_lapsed_lease_and_a_rebalance_fence_the_batch() -> None:
    clock = Clock()
    membership = Membership(10.0, clock)
    membership.renew()
    clock.now += 60
    rebalancing = False
    holding = asyncio.ensure_future(membership.ensure(lambda: rebalancing, poll=0.001))
    await asyncio.sleep(0.02)
    assert not holding.done()
    rebalancing = True
    with pytest.raises(Fenced):
        await asyncio.wait_for(holding, 1)


def stopped_for(gap: float, heartbeats: bool = False, ticking: bool = False) -> bool:
    """Whether a worker whose loop and heartbeats went quiet (or not) for `gap` s, with a
    10 s session, takes itself for stopped."""
    clock = Clock()
    membership = Membership(10.0, clock)
    membership.assigned()
    membership.tick()
    for _ in range(int(gap * 4)):
        clock.now += 0.25
        if ticking:
            membership.tick()
        if heartbeats:
            membership.renew()
    clock.now += gap - int(gap * 4) * 0.25
    return membership.is_stopped()


def test_a_process_stopped_past_its_session_is_out_of_its_group() -> None:
    assert stopped_for(10.5)
    assert not stopped_for(9.5)


def test_a_broker_away_past_the_session_is_not_a_stop() -> None:
    assert not stopped_for(30.0, ticking=True)


def test_a_busy_event_loop_with_heartbeats_answered_is_not_a_stop() -> None:
    assert not stopped_for(30.0, heartbeats=True)


def test_a_stop_holds_until_the_next_assignment() -> None:
    clock = Clock()
    membership = Membership(10.0, clock)
    membership.assigned()
    membership.tick()
    clock.now += 15
    membership.tick()
    membership.renew()  # a heartbeat the coordinator answers does not undo a stop
    clock.now += 1
    membership.tick()
    assert membership.is_stopped()
    membership.assigned()
    assert not membership.is_stopped()
