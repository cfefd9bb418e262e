"""A build process holds itself to a share of one core: after a batch it pauses as long as
the CPU time it used asks for at that share, unless it is not gaining on the log's end."""

import pytest

from agents.build_apart import GAINING_EVERY, WINDOW, Pacer
from streams.settings import share_or_off


class Clocks:
    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0

    def work(self, seconds: float) -> None:
        self.cpu += seconds
        self.wall += seconds


def test_a_batch_is_followed_by_the_pause_its_cpu_time_asks_for() -> None:
    clocks = Clocks()
    pacer = Pacer(0.5, cpu=lambda: clocks.cpu, wall=lambda: clocks.wall)
    clocks.work(0.1)
    assert pacer.pause(1000) == pytest.approx(0.1)  # 0.1 s of CPU is half of 0.2 s
    clocks.wall += 0.1
    clocks.work(0.1)
    assert pacer.pause(1000) == pytest.approx(0.1)


def test_time_spent_waiting_for_the_broker_counts_toward_the_share() -> None:
    clocks = Clocks()
    pacer = Pacer(0.5, cpu=lambda: clocks.cpu, wall=lambda: clocks.wall)
    clocks.work(0.1)
    clocks.wall += 0.3  # a fetch, no CPU
    assert pacer.pause(1000) == 0.0


def test_the_share_is_kept_over_windows_of_its_own() -> None:
    clocks = Clocks()
    pacer = Pacer(0.25, cpu=lambda: clocks.cpu, wall=lambda: clocks.wall)
    for _ in range(40):
        clocks.work(0.05)
        clocks.wall += pacer.pause(1000)
    assert clocks.cpu / clocks.wall == pytest.approx(0.25, rel=0.05)
    assert clocks.wall > 4 * WINDOW  # several windows: the share holds across their starts


def test_a_build_that_does_not_gain_on_the_log_runs_unpaced_until_it_gains_again() -> None:
    clocks = Clocks()
    pacer = Pacer(0.5, cpu=lambda: clocks.cpu, wall=lambda: clocks.wall)
    clocks.work(0.1)
    assert pacer.pause(5000) > 0
    clocks.wall += GAINING_EVERY
    clocks.work(0.1)
    assert pacer.pause(5000) == 0.0  # as far behind as 10 s ago: traffic outruns the share
    clocks.work(0.1)
    assert pacer.pause(4000) == 0.0  # looked at every GAINING_EVERY s only
    clocks.wall += GAINING_EVERY
    clocks.work(0.1)
    pacer.pause(3000)  # gaining again: paced from a window that starts now
    clocks.work(0.1)
    assert pacer.pause(2900) > 0


def test_no_share_no_pause() -> None:
    clocks = Clocks()
    pacer = Pacer(None, cpu=lambda: clocks.cpu, wall=lambda: clocks.wall)
    clocks.work(5.0)
    assert pacer.pause(1000) == 0.0


def test_the_setting_is_a_share_of_one_core_or_off() -> None:
    assert share_or_off("0.5") == 0.5 and share_or_off("2") == 2.0
    assert share_or_off("off") is None
    with pytest.raises(ValueError, match="above 0"):
        share_or_off("0")
