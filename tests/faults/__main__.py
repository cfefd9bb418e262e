"""`python -m tests.faults [NAME ...] [--fast]`: run the fault scenarios, write one results
file (in --out, and a copy in tests/faults/results/) and print the table."""

import argparse
import asyncio
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from ops.progress import Reporter
from tests.faults.harness import Row, as_json, play
from tests.faults.report import COLUMNS, RESULTS, cells, markdown
from tests.faults.scenarios import BY_NAME, SCENARIOS
from tests.integration.cluster import LEVERS, ROOT


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip()


def describe_run() -> dict[str, Any]:
    """Where and when the results were measured: the machine's load matters to the timings."""
    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"started": now(), "finished": None, "commit": commit + ("+changes" if dirty else ""),
            "cpus": os.cpu_count(), "load_average": [round(x, 1) for x in os.getloadavg()],
            "levers": {name: os.environ[name] for name in LEVERS if name in os.environ},
            "scenarios": []}


def chart(rows: list[dict[str, Any]], path: Path) -> str:
    try:
        from bench import plots  # matplotlib comes with the bench extra, not with CI's
    except ModuleNotFoundError as exc:
        return f"no recovery chart: {exc.name} is not installed (the bench extra)"
    drawn = plots.write_recoveries(rows, path)
    return f"chart: {drawn}" if drawn else "no recovery chart: no scenario timed a recovery"


async def main(names: list[str], out: Path, quiet: bool = False,
               settings: dict[str, str] | None = None) -> list[Row]:
    rows = []
    document = describe_run()
    document["settings"] = settings or {}
    with Reporter("fault scenarios", len(names), quiet=quiet) as bar:
        for scenario in (replace(BY_NAME[n], settings={**BY_NAME[n].settings, **(settings or {})})
                         for n in names):
            print(f"== {scenario.name}", flush=True)
            row = await play(scenario, out / scenario.name)
            for problem in row.problems:
                print(f"   {problem}", flush=True)
            print(f"   {'pass' if row.passed else 'FAIL'} in {row.seconds}s, worst recovery "
                  f"{row.recovery_seconds}s, recoveries {row.recoveries}, view gaps "
                  f"{row.unserved}", flush=True)
            rows.append(row)
            document["scenarios"].append(as_json(row))
            document["finished"] = now()
            (out / "results.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
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
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a worker setting for every scenario, without SHOPSTREAM_ "
                             "(e.g. WRITE_BEHIND=on); the workers do not inherit this "
                             "process's SHOPSTREAM_* environment")
    args = parser.parse_args()
    chosen_settings = dict(pair.split("=", 1) for pair in args.set)
    # Our own clients retry through the faults; their connection errors are expected noise.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    chosen = args.names or [s.name for s in SCENARIOS if s.fast or not args.fast]
    args.out.mkdir(parents=True, exist_ok=True)
    done = asyncio.run(main(chosen, args.out, args.quiet, chosen_settings))
    print(markdown(list(COLUMNS), [cells(as_json(row)) for row in done]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    which = "-".join(chosen) if args.names else "fast" if args.fast else "all"
    copy = RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{which}.json"
    shutil.copyfile(args.out / "results.json", copy)
    print(f"results: {args.out / 'results.json'} (copy: {copy.relative_to(ROOT)}); "
          f"the table: python -m tests.faults.report {copy.relative_to(ROOT)}")
    print(chart([as_json(r) for r in done], args.out / "recoveries.png"))
    sys.exit(0 if all(r.passed for r in done) else 1)
