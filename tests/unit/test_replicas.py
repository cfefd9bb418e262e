"""A read is fresh only from the recovered active copy outside a rebalance; every other copy
(standby, recovering active, a rebalance under way) is served flagged stale."""

from faust.types import TP

from agents.repartition import INPUT_TOPIC
from web.replicas import Holding, holding_of, still_to_fold

TP0 = TP("shopstream-orders-v1-changelog", 0)


def test_the_recovered_active_copy_is_fresh() -> None:
    held = holding_of(TP0, {TP0}, set(), False, {TP0: 0}, {})
    assert held == Holding("active", 0) and held.fresh and held.local


def test_a_standby_copy_is_stale_and_says_how_far_behind_it_is() -> None:
    held = holding_of(TP0, set(), {TP0}, False, {}, {TP0: 7})
    assert held == Holding("standby", 7) and not held.fresh and held.local


def test_a_standby_past_the_highwater_it_recovered_to_does_not_claim_a_lag() -> None:
    assert holding_of(TP0, set(), {TP0}, False, {}, {TP0: -3}) == Holding("standby", None)


def test_an_active_copy_still_restoring_its_changelog_is_stale() -> None:
    held = holding_of(TP0, {TP0}, set(), True, {TP0: 120}, {})
    assert held == Holding("recovering", 120) and not held.fresh


def test_during_a_rebalance_even_the_active_copy_is_stale() -> None:
    held = holding_of(TP0, {TP0}, set(), True, {TP0: 0}, {})
    assert held.role == "rebalancing" and not held.fresh and held.local


def test_a_partition_held_in_no_way_is_not_served_here() -> None:
    held = holding_of(TP0, {TP("other", 0)}, {TP("other", 1)}, False, {}, {})
    assert held == Holding("none") and not held.local


def test_an_active_copy_of_a_worker_whose_membership_lapsed_is_stale() -> None:
    held = holding_of(TP0, {TP0}, set(), False, {TP0: 0}, {}, lapsed=True)
    assert held == Holding("lapsed", None) and not held.fresh and held.local


EVENTS = INPUT_TOPIC["products"]


def test_an_active_copy_is_behind_until_it_folds_what_the_input_held_at_its_assignment() -> None:
    ends = {TP(EVENTS, 2): 120}
    assert still_to_fold("products", 2, None, None, None) is None  # not known yet
    assert still_to_fold("products", 2, ends, None, 100) == 20  # committed: 100 is next
    assert still_to_fold("products", 2, ends, 110, 100) == 9
    assert still_to_fold("products", 2, ends, 119, 100) == 0
    assert still_to_fold("products", 2, ends, None, 120) == 0  # nothing was left to fold
    assert still_to_fold("products", 3, ends, None, None) == 0  # not an input held here
