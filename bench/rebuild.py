"""`python -m bench.rebuild`: phase r, a view version rebuilt from a large event log beside the
live one, and phase d of the same run to stand beside it.

One local Kafka and the generated product events (`bench.data`). Phase d is the worker
folding the products view from the log (`bench.throughput`). Phase r starts the same worker
on d's state with a products v2 declared (`bench.rebuild_worker`), asks it to build v2 from
the log's start, and reads the live v1 over HTTP at a steady pace from a process of its own:
idle, before the build and after it, and while v2 builds. The rebuild's rate runs from the
version group's first commit to the one covering half the log (`bench.observe.watch`; CPU:
the worker's, which serves the reads too, and its build process's). Over the second half its
process is stopped for STOPS_FOR seconds after every RUNS_FOR (`Pauser`): the read p99 target
compares the reads with the build running against those with it stopped, taken side by side.
Its check is v2's changelog against the fold of the events. `--checkout` runs d's and r's
worker from another checkout, for an A/B with the same bench.
"""

import argparse
import asyncio
import bisect
import multiprocessing
import random
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
import psutil
from aiokafka.admin import AIOKafkaAdminClient

from bench import report
from bench.check import changelog_rows, compare_rows
from bench.observe import PhaseError, peak_rss_mb, watch
from bench.options import add_settings, settings_of
from bench.pipeline_tools import percentiles, start_in
from bench.throughput import PHASES, Run, create_worker_topics, run_phase
from bench.trace import commit_of
from bench.workspace import fill, kafka_version, workspace
from tests.integration.cluster import ROOT, Worker, wait_until_all_ready

FULL = {"events": 1_000_000, "keys": 100_000}
QUICK = {"events": 50_000, "keys": 5_000}
READ_GAP = 0.005  # seconds between one read's answer and the next read: a steady, light load
IDLE_READS = 2000  # before the build, and as many after it
RATE_LEAST = 1.0  # the rebuild's events/s over d's
P99_MOST = 1.2  # read p99 while the build runs over while it is stopped
TITLE = "rebuild products v2 beside the live v1"
RUNS_FOR, STOPS_FOR = 1.0, 0.5  # seconds the build process runs, then is stopped, in turn
SETTLE = 0.05  # reads begun this soon after a switch count for neither side
Read = tuple[float, float]  # when it began (time.monotonic) and how long it took, seconds


async def read_live(url: str, skus: list[str], count: int | None = None,
                    stopped: Callable[[], bool] = lambda: False,
                    started: Callable[[], None] = lambda: None) -> tuple[list[Read], int]:
    """Read random skus from the live version one after another: each 200's start
    (`time.monotonic`, one clock for every process) and seconds, and how many answers were not
    200. `started` is called once the first answer came."""
    chooser = random.Random(8)
    took: list[Read] = []
    failed = 0
    async with aiohttp.ClientSession() as http:
        while (count is None or len(took) + failed < count) and not stopped():
            began = time.monotonic()
            async with http.get(f"{url}/views/products/{chooser.choice(skus)}") as response:
                await response.read()
            if response.status == 200:
                took.append((began, time.monotonic() - began))
            else:
                failed += 1
            if len(took) + failed == 1:
                started()
            await asyncio.sleep(READ_GAP)
    return took, failed


def _read_in_child(url: str, skus: list[str], count: int | None, halt: Any,
                   answer: Connection) -> None:
    took, failed = asyncio.run(read_live(url, skus, count, halt.is_set,
                                         lambda: answer.send("reading")))
    answer.send((took, failed))


class LiveReader:
    """`read_live` in a process of its own. In the bench's process it shared one event loop
    with `watch`, whose polls (the group's offsets, the CPU of every child process read from
    /proc) held the loop 1 to 6 ms ten times a second: a read answered meanwhile was timed late,
    and only during the build, when `watch` runs."""

    def __init__(self, url: str, skus: list[str], count: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.answers, answer = context.Pipe(duplex=False)
        self.halt = context.Event()
        self.process = context.Process(target=_read_in_child, daemon=True,
                                       args=(url, skus, count, self.halt, answer))
        self.process.start()
        answer.close()

    async def started(self) -> None:
        """Once the first read was answered."""
        if await self._receive() != "reading":
            raise PhaseError("the reader answered before it began reading")

    async def _receive(self) -> Any:
        try:
            return await asyncio.to_thread(self.answers.recv)
        except EOFError:
            raise PhaseError(f"the reader exited with {self.process.exitcode}") from None

    def stop(self) -> None:
        self.halt.set()

    async def result(self) -> tuple[list[Read], int]:
        """The reads' seconds and failures, once it has read `count` or was stopped."""
        try:
            return await self._receive()
        finally:
            await asyncio.to_thread(self.process.join, 10)


async def read_apart(url: str, skus: list[str], count: int) -> tuple[list[Read], int]:
    reader = LiveReader(url, skus, count)
    await reader.started()
    return await reader.result()


class Pauser:
    """Stops (SIGSTOP) and continues the worker's build process in turn while it folds, so
    that the live version's reads with the build running and with it stopped are taken side
    by side, under whatever else the machine is doing at the time. The idle reads before and
    after the build are a minute apart from those during it, and this 2-core machine's speed
    drifts by a quarter from one run to the next: their p99 was 2.63, 3.11 and 3.86 ms in
    three runs within the hour. A stopped build holds no CPU and sends the broker nothing."""

    def __init__(self, worker_pid: int) -> None:
        self.worker = psutil.Process(worker_pid)
        self.switches: list[tuple[float, bool]] = []  # (when, running from then on)

    async def run(self) -> None:
        """Until cancelled, or until the build process exits."""
        build = await self._build_process()
        self.switches.append((time.monotonic(), True))
        try:
            while True:
                await asyncio.sleep(RUNS_FOR)
                build.suspend()
                self.switches.append((time.monotonic(), False))
                await asyncio.sleep(STOPS_FOR)
                build.resume()
                self.switches.append((time.monotonic(), True))
        except psutil.NoSuchProcess:
            return
        finally:
            with suppress(psutil.NoSuchProcess):
                build.resume()

    async def _build_process(self) -> psutil.Process:
        while True:
            for child in self.worker.children():
                with suppress(psutil.NoSuchProcess):
                    if "build-apart" in child.cmdline():
                        return child
            await asyncio.sleep(0.1)  # each look walks /proc

    def split(self, reads: list[Read]) -> tuple[list[float], list[float]]:
        """The seconds of the reads begun and answered within one stretch of the build
        running, and within one of it stopped; reads begun within SETTLE of a switch, or
        across one, or before the build was found, count for neither."""
        if not self.switches:  # no build process of its own: every read was with the build
            return [seconds for _, seconds in reads], []
        running: list[float] = []
        stopped: list[float] = []
        times = [at for at, _ in self.switches]
        for began, seconds in reads:
            index = bisect.bisect_right(times, began) - 1
            if index < 0 or began - times[index] < SETTLE:
                continue
            if index + 1 < len(times) and began + seconds >= times[index + 1]:
                continue
            (running if self.switches[index][1] else stopped).append(seconds)
        return running, stopped


async def rebuild_phase(run: Run) -> dict[str, Any]:
    """Phase r on the state phase d left in `<workdir>/d`."""
    result: dict[str, Any] = {"phase": "r", "title": TITLE}
    token = f"bench-{uuid4().hex}"
    worker = Worker("bench-d", run.bootstrap, run.prefix, run.workdir / "d",
                    partitions=run.partitions, settings={**run.settings, "ADMIN_TOKEN": token},
                    module="bench.rebuild_worker")
    start_in(worker, run.checkout)
    assert worker.process is not None
    try:
        await wait_until_all_ready([worker])
        skus = sorted(run.expected.rows)
        idle, idle_failed = await read_apart(worker.url, skus, IDLE_READS)
        reader = LiveReader(worker.url, skus)
        pauser = Pauser(worker.process.pid)
        pausing: asyncio.Task[None] | None = None
        try:
            await reader.started()
            await _start_rebuild(worker.url, token)
            measured = await _watch(run, worker.process.pid, run.expected.events // 2)
            pausing = asyncio.create_task(pauser.run())
            await _watch(run, worker.process.pid, run.expected.events)
        finally:
            if pausing is not None:
                pausing.cancel()
                with suppress(asyncio.CancelledError):
                    await pausing
            reader.stop()
            reads, during_failed = await reader.result()
        after, after_failed = await read_apart(worker.url, skus, IDLE_READS)
        idle, idle_failed = idle + after, idle_failed + after_failed
        paused_from = pauser.switches[0][0] if pauser.switches else float("inf")
        during = [seconds for began, seconds in reads if began < paused_from]
        running, stopped = pauser.split(reads)
        peak = peak_rss_mb(worker.process.pid)
        apart = await _folded_apart(worker.url)
    except (PhaseError, OSError, RuntimeError, TimeoutError, aiohttp.ClientError) as exc:
        return {**result, "ok": False, "check": f"FAILED: {exc}"}
    finally:
        worker.stop()
    rows = await changelog_rows(run.bootstrap, f"{run.prefix}.view-products-v2-changelog",
                                lambda key: key.decode())
    problem = compare_rows(run.expected, rows)
    if idle_failed or during_failed:
        problem = (f"{idle_failed} reads idle and {during_failed} during the rebuild were not "
                   f"200; {problem or 'rows ok'}")
    return {**result, "events": measured.events, "seconds": round(measured.seconds, 3),
            "events_per_s": round(measured.rate), "events_per_cpu_s": round(measured.cpu_rate),
            "cpu_seconds": round(measured.cpu_seconds, 3), "peak_rss_mb": round(peak, 1),
            "folded_apart": apart, "build_runs_then_stops_s": [RUNS_FOR, STOPS_FOR],
            "reads_idle": percentiles([seconds for _, seconds in idle]),
            "reads_during": percentiles(during), "reads_build_running": percentiles(running),
            "reads_build_stopped": percentiles(stopped),
            "ok": problem is None, "check": f"FAILED: {problem}" if problem else "ok"}


async def _start_rebuild(url: str, token: str) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"{url}/admin/views/products/rebuild?version=2",
            headers={"Authorization": f"Bearer {token}"}) as response:
        if response.status != 200:
            raise PhaseError(f"rebuild refused: {response.status} {await response.text()}")


async def _folded_apart(url: str) -> int:
    """Records of the build folded in a process of its own (agents/build_process.py)."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/admin/views/local") as response:
        built = (await response.json())["built_here"].get("products-v2", {})
    return int(built.get("folded_apart", 0))  # 0 from code that builds in its event loop


async def _watch(run: Run, pid: int, events: int) -> Any:
    """Once the build has committed `events`: how long from its first commit, and its CPU."""
    admin = AIOKafkaAdminClient(bootstrap_servers=run.bootstrap)
    await admin.start()
    try:
        return await watch([pid], admin, f"{run.prefix}.view-products-v2", run.topic,
                           events, run.timeout)
    finally:
        await admin.close()


def targets(d: dict[str, Any], r: dict[str, Any]) -> list[dict[str, Any]]:
    if not (d.get("ok") and r.get("ok")):
        return [{"target": "r/d", "verdict": "n/a"}, {"target": "read p99", "verdict": "n/a"}]
    wall = r["events_per_s"] / d["events_per_s"]
    cpu = r["events_per_cpu_s"] / d["events_per_cpu_s"]
    stopped = r["reads_build_stopped"]["p99_ms"]
    p99 = r["reads_build_running"]["p99_ms"] / stopped if stopped else None
    return [
        {"target": "r/d", "least": RATE_LEAST, "events_per_s": round(wall, 2),
         "events_per_cpu_s": round(cpu, 2), "verdict": "pass" if wall >= RATE_LEAST else "miss",
         "verdict_per_cpu_s": "pass" if cpu >= RATE_LEAST else "miss"},
        {"target": "read p99 while the build runs / while it is stopped", "most": P99_MOST,
         "value": round(p99, 2) if p99 else None, "stopped_p99_ms": stopped,
         "running_p99_ms": r["reads_build_running"]["p99_ms"],
         "first_half_p99_ms": r["reads_during"]["p99_ms"],
         "before_and_after_p99_ms": r["reads_idle"]["p99_ms"],
         "first_half_over_before_and_after": round(
             r["reads_during"]["p99_ms"] / r["reads_idle"]["p99_ms"], 2),
         "verdict": "n/a" if p99 is None else "pass" if p99 <= P99_MOST else "miss"},
    ]


async def measure(args: argparse.Namespace, bootstrap: str, prefix: str,
                  workdir: Path) -> dict[str, dict[str, Any]]:
    print("creating the worker's topics ...", flush=True)
    await create_worker_topics(args.checkout, bootstrap, prefix, args.partitions, workdir)
    print(f"producing {args.events:,} events over {args.keys:,} skus ...", flush=True)
    expected = await fill(bootstrap, f"{prefix}.events", args.partitions, args.events,
                          args.keys, args.quiet)
    run = Run(bootstrap, prefix, args.partitions, workdir, expected, sample=2000,
              commit_interval=2.8, checkout=args.checkout, settings=args.settings)
    [d] = [phase for phase in PHASES if phase.letter == "d"]
    print(f"phase d: {d.title} ...", flush=True)
    phases = {"d": await run_phase(run, d)}
    print(f"phase r: {TITLE} ...", flush=True)
    phases["r"] = await rebuild_phase(run)
    return phases


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['events']:,} events over {QUICK['keys']:,} skus")
    parser.add_argument("--events", type=int, help=f"default {FULL['events']:,}")
    parser.add_argument("--keys", type=int, help=f"default {FULL['keys']:,}")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workdir", type=Path, help="default: a fresh temporary directory")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="run the worker from this checkout (an A/B's other side)")
    add_settings(parser, "the worker", "GC_FREEZE=off")
    args = parser.parse_args(argv)
    args.settings = settings_of(parser, args)
    sizes = QUICK if args.quick else FULL
    args.events, args.keys = args.events or sizes["events"], args.keys or sizes["keys"]
    workdir, prefix, kafka = workspace(args.workdir, "rebuild")
    try:
        phases = asyncio.run(measure(args, kafka.start(), prefix, workdir))
    finally:
        kafka.stop()
    found = targets(phases["d"], phases["r"])
    print(f"\n{report.table(phases)}")
    for name in ("reads_idle", "reads_during", "reads_build_running", "reads_build_stopped"):
        print(f"live v1 reads, {name[6:]}: {phases['r'].get(name)}")
    print("\n".join(str(target) for target in found))
    report.RESULTS.mkdir(exist_ok=True)
    path = report.RESULTS / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-rebuild.json"
    path.write_bytes(orjson.dumps({
        "run": {"events": args.events, "keys": args.keys, "partitions": args.partitions,
                "quick": args.quick, "prefix": prefix, "read_gap_s": READ_GAP,
                "settings": args.settings,
                "checkout": str(args.checkout.resolve()), "commit": commit_of(args.checkout)},
        "machine": report.machine(kafka_version()), "phases": phases, "targets": found,
    }, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    print(f"written to {path}; logs in {workdir}/*.log")
    return 0 if all(phase.get("ok") for phase in phases.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
