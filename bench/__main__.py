"""`python -m bench [--quick]`: one local Kafka, the events, phases a-e and s, then the
pipeline's."""

import argparse
import asyncio
import importlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import plots, report
from bench.options import add_settings, settings_of
from bench.profile import breakdown
from bench.rebuild import TITLE, rebuild_phase, targets
from bench.scaling import TITLE as SCALING
from bench.scaling import scaling_phase
from bench.scaling import table as scaling_table
from bench.throughput import PHASES, Run, create_worker_topics, run_all
from bench.trace import commit_of
from bench.workspace import fill, folded, kafka_version, workspace
from tests.integration.cluster import ROOT

FULL = {"events": 1_000_000, "keys": 100_000, "commit_interval": 2.8}
QUICK = {"events": 50_000, "keys": 5_000, "commit_interval": 1.0}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['events']:,} events over {QUICK['keys']:,} skus")
    parser.add_argument("--events", type=int, help=f"default {FULL['events']:,}")
    parser.add_argument("--keys", type=int, help=f"skus; default {FULL['keys']:,}")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--phases", default="abcdes",
                        help="which of a-e and s (d scaled out to 1, 2 and 4 workers) to run "
                             "(default all), e.g. --phases cd")
    parser.add_argument("--sample", type=int, default=2000,
                        help="rows d reads back over HTTP (seeded sample)")
    parser.add_argument("--commit-interval", type=float,
                        help="seconds between the peers' commits (default: Faust's, 2.8; quick 1)")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="run d's worker from this checkout (default: this one), e.g. a "
                             "`git archive main` copy, to measure another projector")
    parser.add_argument("--profile", action="store_true",
                        help="sample d's worker with py-spy into <workdir>/d-profile.txt, and "
                             "the first worker of each s step from its backlog on into "
                             "<workdir>/s<N>-profile.txt")
    parser.add_argument("--workers", default="1,2,4",
                        help="phase s's worker counts, comma-separated (default 1,2,4)")
    add_settings(parser, "d's and s's workers", "STANDBY_REPLICAS=0")
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary directory")
    parser.add_argument("--no-pipeline", action="store_true", help="skip phases f-h")
    parser.add_argument("--rebuild", action="store_true",
                        help="after d, phase r: a products v2 rebuilt beside the live v1 on "
                             "d's state (bench.rebuild)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or lines")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    args.events = args.events or sizes["events"]
    args.keys = args.keys or sizes["keys"]
    args.commit_interval = args.commit_interval or sizes["commit_interval"]
    if not 1 <= args.keys <= args.events:
        parser.error(f"need 1 <= --keys <= --events, got {args.keys:,} and {args.events:,}")
    try:
        args.workers = tuple(int(n) for n in args.workers.split(","))
    except ValueError:
        args.workers = ()
    if not args.workers or min(args.workers) < 1:
        parser.error(f"--workers takes counts like 1,2,4, got {args.workers!r}")
    args.settings = settings_of(parser, args)
    if not (args.checkout / "streams" / "__main__.py").exists():
        parser.error(f"--checkout {args.checkout} holds no streams/__main__.py")
    if args.partitions < 1 or set(args.phases) - {p.letter for p in PHASES} - {"s"}:
        parser.error("--partitions must be positive and --phases letters from abcdes")
    return args


async def throughput(args: argparse.Namespace, bootstrap: str, prefix: str,
                     workdir: Path) -> dict[str, dict[str, Any]]:
    if "d" in args.phases:
        print("creating the worker's topics (one worker start over the empty log) ...",
              flush=True)
        await create_worker_topics(args.checkout, bootstrap, prefix, args.partitions, workdir)
    started = time.monotonic()
    if set(args.phases) == {"s"}:  # s produces the events for each of its worker counts
        expected = folded(args.events, args.keys)
    else:
        print(f"producing {args.events:,} events over {args.keys:,} skus to {prefix}.events "
              f"({args.partitions} partitions) ...", flush=True)
        expected = await fill(bootstrap, f"{prefix}.events", args.partitions, args.events,
                              args.keys, args.quiet)
        print(f"  done in {time.monotonic() - started:.0f}s", flush=True)
    run = Run(bootstrap, prefix, args.partitions, workdir, expected, args.sample,
              args.commit_interval, args.checkout, args.profile,
              args.settings)
    results = await run_all(run, args.phases, args.quiet)
    if "s" in args.phases:
        print(f"phase s: {SCALING} ...", flush=True)
        results["s"] = await scaling_phase(run, args.workers, quiet=args.quiet)
        print(scaling_table(results["s"]), flush=True)
    if args.rebuild and results.get("d", {}).get("ok"):
        print(f"phase r: {TITLE} ...", flush=True)
        results["r"] = await rebuild_phase(run)
        print("\n".join(str(target) for target in targets(results["d"], results["r"])))
    return results


def pipeline_phases(bootstrap: str, workdir: Path, quick: bool,
                    capacity: float | None) -> dict[str, dict[str, Any]]:
    try:
        pipeline = importlib.import_module("bench.pipeline")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.pipeline":
            raise
        print("phases f-h skipped: bench/pipeline.py is not here yet", flush=True)
        return {}
    results: dict[str, dict[str, Any]] = pipeline.run(bootstrap, workdir, quick, capacity)
    return results


def main(argv: list[str]) -> int:
    args = parse(argv)
    commit = commit_of(args.checkout)  # what the workers start from, before anyone commits
    workdir, prefix, kafka = workspace(args.workdir, "bench")
    try:
        bootstrap = kafka.start()
        phases = asyncio.run(throughput(args, bootstrap, prefix, workdir))
        d = phases.get("d", {})
        capacity = float(d["events_per_s"]) if d.get("ok") else None
        pipeline = {} if args.no_pipeline else pipeline_phases(bootstrap, workdir, args.quick,
                                                                capacity)
    finally:
        kafka.stop()
    profile = workdir / "d-profile.txt"
    shares = breakdown(profile.read_text()) if args.profile and profile.exists() else []
    found = report.ratios(phases, args.keys)
    report.show(phases, found, pipeline, shares)
    results = {**phases, **pipeline}
    path = report.write({
        "run": {"events": args.events, "keys": args.keys, "partitions": args.partitions,
                "quick": args.quick, "prefix": prefix, "commit_interval": args.commit_interval,
                "checkout": str(args.checkout.resolve()), "commit": commit,
                "settings": args.settings},
        "machine": report.machine(kafka_version()),
        "phases": results,
        "targets": found,
        "profile_d": {name: round(share, 3) for name, share in shares},
    })
    print(f"\nwritten to {path} and {path.parent / 'latest.json'}; logs in {workdir}/*.log")
    for chart in plots.write(plots.phases_of({"phases": results}), path.parent, path.stem):
        print(f"chart: {chart}")
    if not args.workdir:
        for state in (path for path in workdir.iterdir() if path.is_dir()):
            shutil.rmtree(state, ignore_errors=True)  # Kafka's and each phase's; logs stay
    return 0 if all(r.get("ok") for r in [*phases.values(), *pipeline.values()]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
