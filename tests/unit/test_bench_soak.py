"""The HTTP soak's plan and verdict (bench/soak.py), and its chart."""

from pathlib import Path
from typing import Any

import pytest

from bench.soak import Soak, rss_after_warmup, slope, verdict


def window(answered: float, p99: float, errors: int = 0) -> dict[str, Any]:
    return {"offered_per_s": 50.0, "answered_per_s": answered,
            "statuses": {"200": 100, **({"error 500": errors} if errors else {})},
            "latency": {"count": 100, "p50_ms": p99 / 3, "p99_ms": p99}}


def rss(*levels: float, every: float = 1.0) -> list[dict[str, Any]]:
    return [{"minute": n * every, "rss_mb": {"worker-1": level, "worker-2": 100.0}}
            for n, level in enumerate(levels)]


def test_a_soak_is_cut_into_windows_and_runs_at_half_the_most_answered() -> None:
    assert Soak(30).windows() == [5.0] * 6
    assert Soak(12, window=5).windows() == [5.0, 5.0, 2.0]
    assert Soak(10, rate=40).rate_after([]) == (40, "given")
    rate, source = Soak(10).rate_after([{"answered_per_s": 30.0}, {"answered_per_s": 81.0}])
    assert rate == 40.5 and "81.0" in source
    with pytest.raises(ValueError):
        Soak(10).rate_after([])


def test_rss_is_flat_after_warm_up_unless_its_fitted_rise_passes_a_tenth() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == 2
    assert slope([(1, 1)]) is None
    warm = rss(50, 80, 100, 101, 100, 102, 101, 103)  # the climb before minute 2 is warm-up
    assert {name: r["verdict"] for name, r in rss_after_warmup(warm, 2).items()} == {
        "worker-1": "flat", "worker-2": "flat"}
    leaking = rss_after_warmup(rss(100, 103, 106, 109, 112), 0)["worker-1"]
    assert (leaking["slope_mb_per_min"], leaking["verdict"]) == (3.0, "rising")


def test_the_verdict_compares_the_last_window_with_the_first() -> None:
    flat = rss(100, 100, 101, 100)
    held = verdict([window(50, 100), window(49, 80), window(48, 119)], flat, 1)
    assert held["verdict"] == "pass" and held["p99_last_over_first"] == 1.19
    slower = verdict([window(50, 100), window(47, 100)], flat, 1)
    assert slower["held"] == {"answered": False, "p99": True, "rss": True}
    later = verdict([window(50, 100), window(50, 121, errors=2)], flat, 1)
    assert (later["held"]["p99"], later["errors"], later["verdict"]) == (False, 2, "miss")
    assert verdict([window(50, 100)], flat, 1)["verdict"].startswith("n/a")


def test_the_soak_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # the bench extra; not installed by CI
    from bench import plots

    found = {"soak": [window(50, 100), window(49, 90)], "soak_rate_per_s": 50.0,
             "soak_rss_samples": rss(90, 100, 100), "workers": "2 x 4 partitions",
             "soak_verdict": {"verdict": "pass"}}
    path = plots.write_soak(found, tmp_path / "soak.png")
    assert path is not None and path.read_bytes().startswith(b"\x89PNG")
    assert plots.write_soak({"soak": []}, tmp_path / "none.png") is None
