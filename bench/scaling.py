"""Phase s: d's worker scaled out, 1, 2 and 4 workers in one group over the same events.

Each count in turn gets a fresh topic prefix (so a fresh group, topics and state): its
workers start over the empty log and are all ready, so no rebalance falls inside the
measurement. Then they are stopped (SIGSTOP) while the events (d's, regenerated from the same
seed) are produced, and continued: they fold a backlog, as d's worker does. Workers folding
while this process produced measured the producer's pace: their fold took as long as the
fill in every step, and events per CPU-second at 4 workers over 1 came out 0.35, 0.50 and
0.82 in three runs of the same code, each worker polling for the few records it was handed.
The group's session (`SESSION`) outlasts the fill, so the stop expels no member; a fill that
does not fails the step. Rate as in d, from the group's first commit to the one covering the
topic; CPU-seconds summed over all the workers. The target: events per CPU-second at 4 workers
no more than 10 % below 1 worker's. Check: a seeded sample read over HTTP from the first
worker (forwarded to each row's owner) equals the fold.
"""

import time
from pathlib import Path
from typing import Any

import psutil
from aiokafka.admin import AIOKafkaAdminClient

from bench.check import http_sample
from bench.observe import Measured, PhaseError, watch
from bench.throughput import STOP_WAIT, Run, profile_of, start_worker
from bench.workspace import fill
from tests.integration.cluster import Worker, wait_until_all_ready

COUNTS = (1, 2, 4)
LEAST_EFFICIENCY = 0.9
SESSION = 85.0  # seconds: Faust refuses one longer than its request timeout (90 s)
TITLE = "the worker scaled out: 1, 2 and 4 workers, one group"


async def scaling_phase(run: Run, counts: tuple[int, ...] = COUNTS,
                        quiet: bool = False) -> dict[str, Any]:
    steps = []
    for count in counts:
        print(f"  {count} worker(s) ...", flush=True)
        steps.append(await _step(run, count, quiet))
        print(f"  {summary(steps[-1])}", flush=True)
    found: dict[str, Any] = {"phase": "s", "title": TITLE, "partitions": run.partitions,
                             "settings": run.settings, "steps": steps, **efficiency(steps)}
    failed = [f"{s['workers']} workers: {s['check']}" for s in steps if not s["ok"]]
    return {**found, "ok": not failed, "check": "; ".join(failed) or "ok"}


async def _step(run: Run, count: int, quiet: bool) -> dict[str, Any]:
    prefix = f"{run.prefix}-s{count}"
    step: dict[str, Any] = {"workers": count, "prefix": prefix}
    profiler = None
    settings = {"SESSION_TIMEOUT": str(SESSION), **run.settings}
    workers = [start_worker(run.checkout, f"bench-s{count}-{n}", run.bootstrap, prefix,
                            run.workdir / f"s{count}" / f"worker-{n}", run.partitions,
                            settings)
               for n in range(1, count + 1)]
    try:
        await wait_until_all_ready(workers)
        processes = [psutil.Process(w.process.pid) for w in workers if w.process is not None]
        for process in processes:
            process.suspend()
        try:
            started = time.monotonic()
            await fill(run.bootstrap, f"{prefix}.events", run.partitions, run.expected.events,
                       len(run.expected.rows), quiet)
            step["fill_seconds"] = round(time.monotonic() - started, 1)
        finally:
            for process in processes:
                process.resume()
        if step["fill_seconds"] > float(settings["SESSION_TIMEOUT"]) - 5:
            raise PhaseError(f"the fill took {step['fill_seconds']} s, about the group's "
                             "session or longer: members may have been expelled, and a "
                             "rebalance would fall inside the measurement (fewer --events)")
        if run.profile:
            step["profile"] = str(run.workdir / f"s{count}-profile.txt")
            profiler = profile_of(processes[0].pid, Path(step["profile"]))
        measured = await _measure(run, workers, prefix)
        await wait_until_all_ready(workers)
        problem = await http_sample(workers[0].url, run.expected, run.sample)
    except (PhaseError, OSError, RuntimeError, TimeoutError, LookupError) as exc:
        return {**step, "ok": False, "check": f"FAILED: {exc}"[:2000]}
    finally:
        for worker in workers:
            worker.stop()
        if profiler is not None:
            profiler.wait(timeout=STOP_WAIT)
    return {**step, **figures(measured), "ok": problem is None,
            "check": f"FAILED: {problem}" if problem else "ok"}


async def _measure(run: Run, workers: list[Worker], group: str) -> Measured:
    admin = AIOKafkaAdminClient(bootstrap_servers=run.bootstrap)
    await admin.start()
    try:
        return await watch([w.process.pid for w in workers if w.process is not None], admin,
                           group, f"{group}.events", run.expected.events, run.timeout)
    finally:
        await admin.close()


def figures(measured: Measured) -> dict[str, Any]:
    return {"events": measured.events, "seconds": round(measured.seconds, 3),
            "events_per_s": round(measured.rate), "events_per_cpu_s": round(measured.cpu_rate),
            "cpu_seconds": round(measured.cpu_seconds, 3),
            "cores_busy": round(measured.cpu_seconds / measured.seconds, 2),
            "peak_rss_mb": round(measured.peak_rss_mb, 1)}


def efficiency(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Events per CPU-second of the most workers over the fewest's, and its verdict."""
    timed = [s for s in steps if s.get("ok")]
    if len(timed) < 2:
        return {"efficiency": None, "verdict": "n/a"}
    fewest, most = timed[0], timed[-1]
    ratio = most["events_per_cpu_s"] / fewest["events_per_cpu_s"]
    return {"efficiency": round(ratio, 3),
            "efficiency_of": f"{most['workers']} workers / {fewest['workers']}",
            "least": LEAST_EFFICIENCY,
            "verdict": "pass" if ratio >= LEAST_EFFICIENCY else "miss"}


def summary(step: dict[str, Any]) -> str:
    if "events_per_s" not in step:
        return f"{step['workers']} workers: {step['check']}"
    return (f"{step['workers']} workers: {step['events_per_s']:,} events/s, "
            f"{step['events_per_cpu_s']:,} per CPU-s, {step['cores_busy']} cores busy, "
            f"peak RSS {step['peak_rss_mb']} MB, check {step['check']}")


def table(result: dict[str, Any]) -> str:
    lines = [summary(step) for step in result["steps"]]
    if result.get("efficiency") is not None:
        lines.append(f"events per CPU-s, {result['efficiency_of']}: {result['efficiency']} "
                     f"(>= {result['least']}) {result['verdict']}")
    return "\n".join(lines)
