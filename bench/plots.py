"""PNG charts of benchmark results: `python -m bench.plots RESULT.json [MORE.json ...] --out DIR`.

Charts, each drawn when the results hold its phases: events/s and events/CPU-s per phase
(a-e: the worker against its peers) and per worker count (s), command -> view latency
percentiles per offered rate (f), and restore rows/s (h). `make bench` draws them beside its
JSON; the fault suite draws its recovery times per scenario beside its results.json, and
`bench.pipeline_http --soak` its soak beside its own.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit
import matplotlib.pyplot as plt
import orjson
from matplotlib.figure import Figure

Phases = dict[str, dict[str, Any]]
PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")
WORKER = "#2456a6"
PEER = "#9aa5b5"


def phases_of(report: dict[str, Any]) -> Phases:
    """The phases of a `make bench` report, or of a pipeline-only one (phases at the top)."""
    found = report.get("phases", report)
    return {name: phase for name, phase in found.items()
            if isinstance(phase, dict) and phase.get("ok")}


def merged(paths: list[Path]) -> Phases:
    """The phases of several results, a later file's phase replacing an earlier one's."""
    phases: Phases = {}
    for path in paths:
        phases |= phases_of(orjson.loads(path.read_bytes()))
    return phases


def throughput(phases: Phases) -> Figure | None:
    shown = [p for p in "abcde" if p in phases and "events_per_s" in phases[p]]
    if not shown:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(12.5, 5), layout="constrained")
    labels = [f"{p}: {_wrap(phases[p]['title'])}" for p in shown]
    colours = [WORKER if p == "d" else PEER for p in shown]
    for ax, field, title in ((axes[0], "events_per_s", "events/s"),
                             (axes[1], "events_per_cpu_s", "events per CPU-second")):
        values = [phases[p][field] for p in shown]
        bars = ax.barh(labels, values, color=colours)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
        ax.set_xscale("log")
        ax.set_title(f"{title} (log scale)")
        ax.invert_yaxis()
        ax.margins(x=0.25)
    axes[1].set_yticklabels([])
    events = phases[shown[0]].get("events")
    figure.suptitle(f"Throughput per phase, {events:,} events: the worker (d) against its peers"
                    if events else "Throughput per phase: the worker (d) against its peers")
    return figure


def scaling(phases: Phases) -> Figure | None:
    """Phase s: events/s and events per CPU-second per worker count, against 1 worker's."""
    steps = [step for step in phases.get("s", {}).get("steps", []) if "events_per_s" in step]
    if not steps:
        return None
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    labels = [f"{step['workers']} worker{'s' if step['workers'] > 1 else ''}" for step in steps]
    for ax, field, title in ((axes[0], "events_per_s", "events/s"),
                             (axes[1], "events_per_cpu_s", "events per CPU-second, all workers")):
        values = [step[field] for step in steps]
        bars = ax.bar(labels, values, color=WORKER)
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.2)
    least = phases["s"].get("least")
    if least:
        axes[1].axhline(steps[0]["events_per_cpu_s"] * least, color=PEER, linestyle="--",
                        label=f"{least:.0%} of 1 worker's: the target's floor")
        axes[1].legend(fontsize=8, loc="lower right")
    figure.suptitle(f"Scaling out over {phases['s'].get('partitions', '?')} partitions, "
                    f"{steps[0].get('events', 0):,} events")
    return figure


def latency(phases: Phases) -> Figure | None:
    rates = [r for r in phases.get("f", {}).get("rates", []) if r.get("latency", {}).get("count")]
    if not rates:
        return None
    figure, ax = plt.subplots(figsize=(8, 4.8), layout="constrained")
    offered = [r["target_per_s"] for r in rates]
    for name, style in zip(PERCENTILES, ("o-", "s--", "^:"), strict=True):
        ax.plot(offered, [r["latency"][name] for r in rates], style, label=name[:3])
    carried = [r.get("carried_per_s") for r in rates]
    for x, y, c in zip(offered, [r["latency"]["p99_ms"] for r in rates], carried, strict=True):
        if c is not None:
            ax.annotate(f"carried {c:,.0f}/s", (x, y), textcoords="offset points", xytext=(4, 6),
                        fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered commands/s")
    ax.set_ylabel("command → view latency, ms (log)")
    ax.set_title(phases["f"].get("hop", "command → view latency per offered rate"), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return figure


def restore(phases: Phases) -> Figure | None:
    h = phases.get("h")
    if not h or "rows_per_s" not in h:
        return None
    figure, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
    labels = ["restore from the changelog", "restore, beyond a plain restart"]
    values = [h["rows_per_s"], h.get("rows_per_s_beyond_a_restart") or 0]
    bars = ax.barh(labels, values, color=[WORKER, PEER])
    ax.bar_label(bars, labels=[f"{v:,.0f} rows/s" for v in values], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.3)
    ax.set_title(f"Restore of {h.get('rows', 0):,} rows: ready after "
                 f"{h.get('restore_ready_seconds', float('nan')):.0f} s", fontsize=10)
    return figure


def recoveries(rows: list[dict[str, Any]]) -> Figure | None:
    """The fault suite's recovery time per scenario (its results.json), failures in red."""
    timed = [r for r in rows if r.get("recovery_seconds") is not None]
    if not timed:
        return None
    figure, ax = plt.subplots(figsize=(8, 0.45 * len(timed) + 1.2), layout="constrained")
    values = [r["recovery_seconds"] for r in timed]
    bars = ax.barh([r["scenario"] for r in timed], values,
                   color=[WORKER if r.get("passed") else "#b3261e" for r in timed])
    ax.bar_label(bars, labels=[f"{v:.1f} s" for v in values], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.margins(x=0.2)
    ax.set_xlabel("seconds from the (last) fault until every commands partition answered "
                  "and every worker was ready")
    ax.set_title("Recovery per fault scenario (red: the scenario failed)", fontsize=10)
    return figure


def write_recoveries(rows: list[dict[str, Any]], path: Path) -> Path | None:
    return _saved(recoveries(rows), path)


def soak(found: dict[str, Any]) -> Figure | None:
    """An HTTP soak (`bench.pipeline_http --soak`): answered/s, p50/p99 and RSS over time."""
    windows = [w for w in found.get("soak", []) if w.get("latency", {}).get("count")]
    if not windows:
        return None
    figure, axes = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained")
    ends = [w.get("ended_minute", i + 1) for i, w in enumerate(windows)]
    axes[0].plot(ends, [w["answered_per_s"] for w in windows], "o-", color=WORKER)
    axes[0].axhline(windows[0]["offered_per_s"], color=PEER, linestyle="--", label="offered")
    axes[0].set_title("answered commands/s per window", fontsize=10)
    axes[0].set_ylim(0, 1.2 * max(w["offered_per_s"] for w in windows))
    axes[0].legend(fontsize=8)
    for name, style in (("p50_ms", "o-"), ("p99_ms", "^:")):
        axes[1].plot(ends, [w["latency"][name] for w in windows], style, label=name[:3])
    axes[1].set_title("POST /commands latency per window, ms", fontsize=10)
    axes[1].set_ylim(bottom=0)
    axes[1].legend(fontsize=8)
    samples = found.get("soak_rss_samples", [])
    for name in (samples[0]["rss_mb"] if samples else {}):
        axes[2].plot([s["minute"] for s in samples], [s["rss_mb"][name] for s in samples],
                     label=name)
    axes[2].set_title("worker RSS, MB", fontsize=10)
    axes[2].set_ylim(bottom=0)
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("minutes into the soak (window ends)")
        ax.grid(True, alpha=0.3)
    verdict = found.get("soak_verdict", {}).get("verdict", "")
    figure.suptitle(f"HTTP soak at {found.get('soak_rate_per_s')} commands/s offered, "
                    f"{found.get('workers', '')}: {verdict}")
    return figure


def write_soak(found: dict[str, Any], path: Path) -> Path | None:
    return _saved(soak(found), path)


def _saved(figure: Figure | None, path: Path) -> Path | None:
    if figure is None:
        return None
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


CHARTS: dict[str, Callable[[Phases], Figure | None]] = {
    "throughput": throughput, "scaling": scaling, "latency": latency, "restore": restore}


def write(phases: Phases, out: Path, stem: str) -> list[Path]:
    """Every chart the phases allow, as `<out>/<stem>-<chart>.png`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in CHARTS.items():
        figure = draw(phases)
        if figure is None:
            continue
        path = out / f"{stem}-{name}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def _wrap(title: str, width: int = 22) -> str:
    words, lines, line = title.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plots", description=__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="results JSON, later ones win")
    parser.add_argument("--out", type=Path, help="default: beside the last results file")
    parser.add_argument("--stem", help="file name start; default: the last results file's")
    args = parser.parse_args(argv)
    last = args.results[-1]
    written = write(merged(args.results), args.out or last.parent, args.stem or last.stem)
    for path in written:
        print(path)
    if not written:
        print("no phases with figures to plot in those results", file=sys.stderr)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
