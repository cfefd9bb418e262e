"""The bulk restore's account of itself: what its log lines and /metrics gauges say."""

import pytest

from streams.restore import Progress
from streams.settings import records_or_off


def test_progress_counts_down_with_a_rate_and_an_eta_then_reports_the_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr("streams.restore.time.monotonic", lambda: now[0])
    monkeypatch.setattr("streams.restore.time.process_time", lambda: now[0] * 0.75)
    progress = Progress()
    assert progress.remaining == 0 and not progress.running
    progress.begin(partitions=4, total=1_000)
    now[0] = 102.0
    progress.done = 400
    assert progress.remaining == 600
    assert progress.line() == "bulk restore: 400 of 1,000 rows, 200 rows/s, ETA 3.0 s"
    progress.done = 1_000
    now[0] = 104.0
    progress.finish()
    assert progress.remaining == 0 and not progress.running
    assert progress.line() == ("bulk restore: 1,000 rows of 4 changelog partitions in 4.0 s: "
                               "250 rows/s, 3.0 CPU-s")


def test_bulk_restore_can_be_turned_off_or_given_a_threshold() -> None:
    assert records_or_off("10000") == 10_000
    assert records_or_off("0") == 1
    assert records_or_off("off") is None
