"""When a version counts as caught up on a partition: everything appended more than
READY_WITHIN seconds ago is folded; with no such recent record, everything to the end."""

from agents.view_admin import Position


def test_a_version_short_only_of_the_last_moments_events_is_caught_up() -> None:
    assert Position(0, folded=90, end=100, settled=90).caught_up
    assert Position(0, folded=95, end=100, settled=90).caught_up
    assert not Position(0, folded=89, end=100, settled=90).caught_up


def test_with_nothing_recent_on_the_log_a_version_must_reach_its_end() -> None:
    assert Position(0, folded=100, end=100).caught_up
    assert not Position(0, folded=99, end=100).caught_up
    assert Position(0, folded=99, end=100).behind == 1
