"""`python -m tests.faults [NAME ...] [--fast]`: run the fault scenarios and print the table."""

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from ops.progress import Reporter
from tests.faults.harness import Row, as_json, play
from tests.faults.scenarios import BY_NAME, SCENARIOS
from tests.integration.cluster import ROOT

COLUMNS = ("scenario", "commands", "events", "duplicates skipped", "dead letters",
           "mismatches", "recovery s", "total s", "result")


def table(rows: list[Row]) -> str:
    lines = [[r.scenario, r.commands, r.events, r.duplicates_skipped, r.dead_letters,
              r.mismatches, "-" if r.recovery_seconds is None else r.recovery_seconds,
              r.seconds, "pass" if r.passed else "FAIL"] for r in rows]
    cells = [list(COLUMNS), *[[str(c) for c in line] for line in lines]]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    rule = "  ".join("-" * w for w in widths)
    text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join([text[0], rule, *text[1:]])


def chart(rows: list[dict[str, Any]], path: Path) -> str:
    try:
        from bench import plots  # matplotlib comes with the bench extra, not with CI's
    except ModuleNotFoundError as exc:
        return f"no recovery chart: {exc.name} is not installed (the bench extra)"
    drawn = plots.write_recoveries(rows, path)
    return f"chart: {drawn}" if drawn else "no recovery chart: no scenario timed a recovery"


async def main(names: list[str], out: Path, quiet: bool = False) -> list[Row]:
    rows = []
    with Reporter("fault scenarios", len(names), quiet=quiet) as bar:
        for scenario in (BY_NAME[n] for n in names):
            print(f"== {scenario.name}", flush=True)
            row = await play(scenario, out / scenario.name)
            for problem in row.problems:
                print(f"   {problem}", flush=True)
            print(f"   {'pass' if row.passed else 'FAIL'} in {row.seconds}s, "
                  f"recoveries {row.recoveries}", flush=True)
            rows.append(row)
            (out / "results.json").write_bytes(orjson.dumps([as_json(r) for r in rows],
                                                            option=orjson.OPT_INDENT_2))
            bar.advance()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *BY_NAME], metavar="NAME",
                        help=f"scenarios to run (default: all): {', '.join(BY_NAME)}")
    parser.add_argument("--fast", action="store_true", help="only the CI subset")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or lines")
    parser.add_argument("--out", type=Path,
                        default=ROOT / ".faults" / time.strftime("%Y%m%d-%H%M%S"),
                        help="where the clusters' files, logs and results.json go")
    args = parser.parse_args()
    # Our own clients retry through the faults; their connection errors are expected noise.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    chosen = args.names or [s.name for s in SCENARIOS if s.fast or not args.fast]
    args.out.mkdir(parents=True, exist_ok=True)
    done = asyncio.run(main(chosen, args.out, args.quiet))
    print(table(done))
    print(f"results: {args.out / 'results.json'}")
    print(chart([as_json(r) for r in done], args.out / "recoveries.png"))
    sys.exit(0 if all(r.passed for r in done) else 1)
