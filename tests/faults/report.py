"""`python -m tests.faults.report [RESULTS.json ...]`: write docs/faults.md from fault-suite
results files, never by hand, and its chart of recovery times, docs/img/faults-recoveries.png.

The table shows each scenario's last result in the files given (newest last); where a
scenario ran more than once, a second table gives the spread of its worst recoveries. The
chart draws each scenario's last worst recovery as a bar and every run's as a dot (matplotlib,
from the bench extra; without it the page says there is no chart).
"""

import argparse
import os
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from tests.integration.cluster import ROOT

RESULTS = ROOT / "tests" / "faults" / "results"
PAGE = ROOT / "docs" / "faults.md"
CHART = ROOT / "docs" / "img" / "faults-recoveries.png"
COLUMNS = ("scenario", "commands", "events", "duplicates skipped", "dead letters",
           "mismatches", "worst recovery s", "longest view gap s", "reads (stale, 5xx)",
           "total s", "result")


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    return document


def cells(row: dict[str, Any]) -> list[str]:
    longest = longest_gap(row)
    recovery = row.get("recovery_seconds")
    return [row["scenario"], str(row["commands"]), str(row["events"]),
            str(row["duplicates_skipped"]), str(row["dead_letters"]), str(row["mismatches"]),
            "-" if recovery is None else str(recovery),
            "-" if longest is None else str(longest),
            f"{row.get('reads', 0)} ({row.get('stale_reads', 0)}, {row.get('reads_5xx', 0)})",
            str(row["seconds"]), "pass" if row["passed"] else "FAIL"]


def settings_note(settings: dict[str, str] | None) -> str:
    if not settings:
        return ""
    return ", workers set " + ", ".join(f"`{k}={v}`" for k, v in sorted(settings.items()))


def markdown(header: list[str], lines: list[list[str]]) -> str:
    rows = [header, ["---"] * len(header), *lines]
    return "\n".join("| " + " | ".join(line) + " |" for line in rows)


def longest_gap(row: dict[str, Any]) -> float | None:
    gaps = (row.get("unserved") or {}).values()
    return max(gaps, default=None)


MEASURES = {"worst recovery": lambda row: row.get("recovery_seconds"),
            "longest view gap": longest_gap}


def spread(runs: list[dict[str, Any]]) -> list[list[str]]:
    """Per scenario run more than once, per measure: runs, min, median, max, each run."""
    found: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        for row in run["scenarios"]:
            for measure, of in MEASURES.items():
                value = of(row)
                if value is not None:
                    found.setdefault((row["scenario"], measure), []).append(value)
    return [[name, measure, str(len(times)), str(min(times)),
             str(round(statistics.median(times), 1)), str(max(times)),
             ", ".join(str(t) for t in times)]
            for (name, measure), times in sorted(found.items()) if len(times) > 1]


def latest(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each scenario's row in the last run that has it."""
    last: dict[str, dict[str, Any]] = {}
    for run in runs:
        for row in run["scenarios"]:
            last[row["scenario"]] = row
    return last


def chart(runs: list[dict[str, Any]], path: Path) -> Path | None:
    """Worst recovery per scenario: the last run's as a bar, every run's as a dot; None if
    no run timed a recovery."""
    from bench import plots  # matplotlib comes with the bench extra, not with CI's

    figure = plots.recoveries(list(latest(runs).values()))
    if figure is None:
        return None
    ax = figure.axes[0]
    rows = [label.get_text() for label in ax.get_yticklabels()]
    times = [(rows.index(row["scenario"]), row["recovery_seconds"]) for run in runs
             for row in run["scenarios"]
             if row["scenario"] in rows and row.get("recovery_seconds") is not None]
    ax.scatter([t for _, t in times], [y for y, _ in times], color="black", s=12, zorder=3,
               label="each run")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("worst recovery, s: after the (last) fault, until the commands were answered, "
                  "\nthe workers ready and every view partition served again", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plots.plt.close(figure)
    return path


def page(paths: list[Path], chart_link: str | None = None) -> str:
    runs = [load(path) for path in paths]
    last = latest(runs)
    sources = "\n".join(
        f"- `{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}`: "
        f"{run['started']} to {run['finished']}, commit {run['commit']}, "
        f"{run['cpus']} CPUs, load average at the start {run['load_average']}"
        f"{settings_note(run.get('settings'))}"
        + "".join(f", {name}={value}" for name, value in run.get("levers", {}).items())
        for path, run in zip(paths, runs, strict=True))
    text = [
        "# Fault suite results",
        "",
        "Generated by `python -m tests.faults.report` from the results files below; do not "
        "edit by hand. See [failover.md](failover.md) for what the columns measure and how to "
        "run the suite.",
        "",
        sources,
        "",
        markdown(list(COLUMNS), [cells(row) for row in last.values()]),
    ]
    if chart_link is not None:
        text += ["", f"![Worst recovery per scenario: the last run a bar, each run a dot]"
                     f"({chart_link})"]
    repeated = spread(runs)
    if repeated:
        text += ["", "## Over repeated runs (seconds)", "",
                 markdown(["scenario", "measure", "runs", "min", "median", "max", "each run"],
                          repeated)]
    failing = [row for row in last.values() if not row["passed"]]
    for row in failing:
        kinds = Counter(problem.split(":")[0] for problem in row["problems"])
        text += ["", f"## {row['scenario']}: problems", "",
                 f"{len(row['problems'])} problems by kind: "
                 + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())
                 + " (write-backs and reads are cut at 20 each); the first ten:", "", "```",
                 *[problem.splitlines()[0][:300] for problem in row["problems"][:10]], "```"]
    return "\n".join(text) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.report", description=__doc__)
    parser.add_argument("results", nargs="*", type=Path,
                        help=f"results files (default: every one in {RESULTS.relative_to(ROOT)}; "
                             "each scenario shows its newest)")
    parser.add_argument("--page", type=Path, default=PAGE, help="the markdown file to write")
    parser.add_argument("--chart", type=Path, default=CHART, help="the PNG chart to write")
    args = parser.parse_args()
    paths = args.results or sorted(RESULTS.glob("*.json"))
    if not paths:
        parser.error(f"no results files in {RESULTS}; run `make faults` first")
    try:
        drawn = chart([load(path) for path in paths], args.chart)
    except ModuleNotFoundError as exc:
        drawn = None
        print(f"no chart: {exc.name} is not installed (the bench extra)")
    args.page.parent.mkdir(parents=True, exist_ok=True)
    link = os.path.relpath(drawn, args.page.parent) if drawn else None
    args.page.write_text(page(paths, link))
    print(f"wrote {args.page}" + (f" and {drawn}" if drawn else "")
          + f" from {len(paths)} results file(s)")


if __name__ == "__main__":
    main()
