"""The run's report: a printed table, the target ratios, and JSON under bench/results/."""

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil

RESULTS = Path(__file__).parent / "results"
COLUMNS = ("phase", "events", "seconds", "events/s", "events/CPU-s", "peak RSS MB", "check")
RSS_LIMIT_MB = 400
RSS_KEYS = 1_000_000
# (numerator, denominator, least ratio or None when only reported)
TARGETS = [("d", "c", 3.0), ("d", "b", 2.0), ("d", "e", 1.5), ("d", "a", None)]  # issue #18


def machine(kafka_version: str) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kafka": kafka_version,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def ratios(phases: dict[str, dict[str, Any]], keys: int) -> list[dict[str, Any]]:
    found = []
    for top, bottom, least in TARGETS:
        a, b = phases.get(top), phases.get(bottom)
        if not (a and b and a["ok"] and b["ok"]):
            found.append({"target": f"{top}/{bottom}", "least": least, "verdict": "n/a"})
            continue
        wall = a["events_per_s"] / b["events_per_s"]
        cpu = a["events_per_cpu_s"] / b["events_per_cpu_s"]
        verdict = "reported" if least is None else ("pass" if wall >= least else "miss")
        found.append({"target": f"{top}/{bottom}", "least": least, "events_per_s": round(wall, 2),
                      "events_per_cpu_s": round(cpu, 2), "verdict": verdict,
                      "verdict_per_cpu_s": None if least is None else
                      ("pass" if cpu >= least else "miss")})
    found.append(_rss_target(phases.get("d"), keys))
    return found


def _rss_target(worker: dict[str, Any] | None, keys: int) -> dict[str, Any]:
    target = {"target": "worker peak RSS MB", "most": RSS_LIMIT_MB, "keys": keys}
    if not worker or "peak_rss_mb" not in worker:
        return {**target, "verdict": "n/a"}
    verdict = "pass" if worker["peak_rss_mb"] <= RSS_LIMIT_MB else "miss"
    if keys < RSS_KEYS:
        verdict += f" (holding {keys:,} keys, not {RSS_KEYS:,}: rerun with --keys {RSS_KEYS})"
    return {**target, "value": worker["peak_rss_mb"], "verdict": verdict}


def table(phases: dict[str, dict[str, Any]]) -> str:
    rows = [COLUMNS] + [
        (f"{r['phase']} {r['title']}", _n(r.get("events")), _n(r.get("seconds")),
         _n(r.get("events_per_s")), _n(r.get("events_per_cpu_s")), _n(r.get("peak_rss_mb")),
         r["check"][:80])
        for r in phases.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) if i in (0, 6) else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
                     for row in rows)


def _n(value: float | int | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def ratio_lines(found: list[dict[str, Any]]) -> str:
    lines = []
    for r in found:
        if "most" in r:
            value = r.get("value", "-")
            lines.append(f"{r['target']}: {value} (<= {r['most']}) {r['verdict']}")
        elif "events_per_s" not in r:
            lines.append(f"{r['target']}: n/a (a phase failed or was skipped)")
        else:
            bound = f" (>= {r['least']})" if r["least"] is not None else ""
            cpu = f", per CPU-s {r['events_per_cpu_s']} {r['verdict_per_cpu_s'] or ''}"
            lines.append(f"{r['target']}{bound}: events/s {r['events_per_s']} {r['verdict']}"
                         f"{cpu}".rstrip())
    return "\n".join(lines)


def show(phases: dict[str, dict[str, Any]], found: list[dict[str, Any]],
         pipeline: dict[str, dict[str, Any]], profile: list[tuple[str, float]]) -> None:
    print(f"\n{table(phases)}\n\n{ratio_lines(found)}")
    for name, figures in pipeline.items():
        print(f"{name}: {figures}")
    if profile:
        print("\nd's worker, share of py-spy samples:")
        print("\n".join(f"{share:6.1%}  {name}" for name, share in profile))


def write(report: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    body = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    path = RESULTS / f"{stamp}.json"
    path.write_bytes(body)
    (RESULTS / "latest.json").write_bytes(body)
    return path
