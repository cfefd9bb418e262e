"""The HTTP soak's plan and verdict: windows of one rate, first against last, RSS's slope.

The issue's target: "no decline in commands/s or p99 from the first 5 minutes to the last,
and RSS flat after warm-up". Declines within the tolerances below count as none (a shared
2-core machine moves more than that between two windows of the same code); warm-up is the
first window, and RSS is flat when its fitted rise over the rest stays within `RSS_RISE` of
its level at the warm-up's end, for every worker.
"""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.pipeline_tools import rss_mb
from tests.integration.cluster import Worker

ANSWERED_DROP = 0.05
P99_RISE = 0.20
RSS_RISE = 0.10
RSS_EVERY = 30.0


@dataclass(frozen=True)
class Soak:
    minutes: float
    window: float = 5.0
    rate: float | None = None

    def windows(self) -> list[float]:
        """Minutes of each window: whole windows, the last one shorter if need be."""
        whole, rest = divmod(self.minutes, self.window)
        return [self.window] * int(whole) + ([round(rest, 3)] if rest > 1e-9 else [])

    def rate_after(self, runs: list[dict[str, Any]]) -> tuple[float, str]:
        if self.rate:
            return self.rate, "given"
        if not runs:
            raise ValueError("a soak needs --soak-rate or at least one rate to measure")
        most = max(run["answered_per_s"] for run in runs)
        return round(most / 2, 1), f"half of the most answered/s of the rates run ({most})"


class RssSampler:
    """Each worker's RSS every `RSS_EVERY` seconds, as (minute, {worker: MB})."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.started = time.monotonic()
        self.samples: list[dict[str, Any]] = []

    def minute(self) -> float:
        return (time.monotonic() - self.started) / 60

    async def run(self) -> None:
        while True:
            self.samples.append({"minute": round(self.minute(), 2),
                                 "rss_mb": {w.name: rss_mb(w) for w in self.workers}})
            await asyncio.sleep(RSS_EVERY)


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (x, y) points; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def rss_after_warmup(samples: list[dict[str, Any]], warmup: float) -> dict[str, dict[str, Any]]:
    """Per worker: RSS at the warm-up's end, its slope after (MB a minute), and the verdict."""
    found = {}
    after = [s for s in samples if s["minute"] >= warmup]
    for name in (after[0]["rss_mb"] if after else {}):
        points = [(s["minute"], s["rss_mb"][name]) for s in after
                  if s["rss_mb"].get(name) is not None]
        fitted = slope(points)
        if fitted is None:
            found[name] = {"verdict": "n/a: too few samples after warm-up"}
            continue
        level, span = points[0][1], points[-1][0] - points[0][0]
        rise = fitted * span
        found[name] = {"rss_at_warmup_end_mb": level, "rss_last_mb": points[-1][1],
                       "slope_mb_per_min": round(fitted, 3), "fitted_rise_mb": round(rise, 1),
                       "verdict": "flat" if rise <= RSS_RISE * level else "rising"}
    return found


def verdict(windows: list[dict[str, Any]], samples: list[dict[str, Any]],
            warmup: float) -> dict[str, Any]:
    if len(windows) < 2:
        return {"verdict": "n/a: fewer than two windows"}
    first, last = windows[0], windows[-1]
    answered = last["answered_per_s"] / first["answered_per_s"]
    p99 = last["latency"]["p99_ms"] / first["latency"]["p99_ms"]
    errors = sum(n for w in windows for status, n in w["statuses"].items()
                 if status.startswith("error"))
    rss = rss_after_warmup(samples, warmup)
    held = {"answered": answered >= 1 - ANSWERED_DROP, "p99": p99 <= 1 + P99_RISE,
            "rss": bool(rss) and all(r["verdict"] == "flat" for r in rss.values())}
    return {"answered_last_over_first": round(answered, 3),
            "p99_last_over_first": round(p99, 3), "errors": errors, "rss": rss,
            "tolerances": {"answered_drop": ANSWERED_DROP, "p99_rise": P99_RISE,
                           "rss_rise": RSS_RISE},
            "held": held, "verdict": "pass" if all(held.values()) else "miss"}


def verdict_lines(found: dict[str, Any]) -> str:
    if "held" not in found:
        return f"soak: {found['verdict']}"
    lines = [f"soak, last window over first: answered/s {found['answered_last_over_first']} "
             f"(>= {1 - ANSWERED_DROP}), p99 {found['p99_last_over_first']} "
             f"(<= {1 + P99_RISE}), errors {found['errors']}"]
    for name, rss in found["rss"].items():
        lines.append(f"  {name} RSS after warm-up: {rss.get('slope_mb_per_min')} MB/min, "
                     f"{rss.get('rss_at_warmup_end_mb')} -> {rss.get('rss_last_mb')} MB: "
                     f"{rss['verdict']}")
    lines.append(f"soak verdict: {found['verdict']} {found['held']}")
    return "\n".join(lines)
