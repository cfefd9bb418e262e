"""bench/plots.py draws each chart its results allow, from the results files the bench wrote."""

from pathlib import Path

import pytest

pytest.importorskip("matplotlib")  # the bench extra; not installed by CI

from bench import plots, scaling

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_full_set_of_results_gives_every_chart(tmp_path: Path) -> None:
    sources = [RESULTS / "20261123T222907Z.json", RESULTS / "20261124T031908Z-pipeline-fg.json",
               RESULTS / "20261124T005530Z-pipeline-h.json"]
    written = plots.write(plots.merged(sources), tmp_path, "run")
    assert [p.name for p in written] == ["run-throughput.png", "run-latency.png",
                                         "run-restore.png"]
    for path in written:
        assert path.read_bytes().startswith(PNG) and path.stat().st_size > 10_000


def test_the_fault_suite_chart_shows_each_timed_recovery(tmp_path: Path) -> None:
    rows = [{"scenario": "kill-worker", "recovery_seconds": 12.5, "passed": True},
            {"scenario": "broker-restart", "recovery_seconds": 30.1, "passed": False},
            {"scenario": "poison", "recovery_seconds": None, "passed": True}]
    path = plots.write_recoveries(rows, tmp_path / "recoveries.png")
    assert path is not None and path.read_bytes().startswith(PNG)
    assert plots.write_recoveries(rows[2:], tmp_path / "none.png") is None


def test_only_the_charts_the_phases_allow(tmp_path: Path) -> None:
    phases = plots.phases_of({"phases": {
        "d": {"ok": True, "title": "worker", "events": 10, "events_per_s": 5.0,
              "events_per_cpu_s": 6.0},
        "e": {"ok": False, "error": "the peer failed"}}})
    assert list(phases) == ["d"]
    assert [p.name for p in plots.write(phases, tmp_path, "x")] == ["x-throughput.png"]
    assert plots.write({}, tmp_path, "none") == []


def scaled(*per_cpu_s: int) -> dict:
    steps = [{"workers": 2**n, "ok": True, "events": 1000, "events_per_s": 500,
              "events_per_cpu_s": rate} for n, rate in enumerate(per_cpu_s)]
    return {"phase": "s", "ok": True, "partitions": 8, "steps": steps,
            **scaling.efficiency(steps)}


def test_the_scaling_chart_and_verdict_hold_events_per_cpu_second_to_a_tenth(
    tmp_path: Path,
) -> None:
    held, fell = scaled(1000, 950, 900), scaled(1000, 950, 899)
    assert (held["efficiency"], held["verdict"]) == (0.9, "pass")
    assert (fell["efficiency"], fell["verdict"]) == (0.899, "miss")
    assert scaling.efficiency(held["steps"][:1])["verdict"] == "n/a"
    written = plots.write(plots.phases_of({"phases": {"s": held}}), tmp_path, "x")
    assert [p.name for p in written] == ["x-scaling.png"]
    assert written[0].read_bytes().startswith(PNG)
