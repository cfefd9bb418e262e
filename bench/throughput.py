"""Phases a-e: the same events consumed by each peer in turn, each with a fresh group and state.

a raw aiokafka + orjson · b no-op Faust agent · c Faust agent, one RocksDB write per event ·
d the real worker (`python -m streams worker`) as a black box · e the same fold on Quix Streams.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from bench.check import changelog_rows, compare_rows, http_sample
from bench.data import Expected
from bench.observe import Measured, PhaseError, watch
from ops.progress import Reporter
from tests.integration.cluster import ROOT, Worker, wait_until_all_ready

STOP_WAIT = 60.0


@dataclass(frozen=True)
class Run:
    """What every phase shares: the broker, the event topic, its size and expected fold."""

    bootstrap: str
    prefix: str
    partitions: int
    workdir: Path
    expected: Expected
    sample: int
    commit_interval: float
    checkout: Path  # the repository whose worker d runs
    profile: bool = False  # py-spy samples d's worker, and each s step's first, into <workdir>
    settings: dict[str, str] = field(default_factory=dict)
    """More SHOPSTREAM_* variables for the workers of d and s, by name without the prefix."""

    @property
    def topic(self) -> str:
        return f"{self.prefix}.events"

    @property
    def timeout(self) -> float:
        return max(900.0, self.expected.events / 200)


@dataclass(frozen=True)
class Phase:
    letter: str
    title: str
    kind: str  # a bench.consumers kind, or "worker"


PHASES = [
    Phase("a", "raw aiokafka getmany + orjson", "raw"),
    Phase("b", "Faust no-op agent", "faust-noop"),
    Phase("c", "Faust agent, RocksDB write per event", "faust-table"),
    Phase("d", "shopstream worker (products view)", "worker"),
    Phase("e", "Quix Streams, same fold in its state", "quix"),
]


async def run_phase(run: Run, phase: Phase) -> dict[str, Any]:
    result: dict[str, Any] = {"phase": phase.letter, "title": phase.title}
    try:
        if phase.kind == "worker":
            measured, problem = await _worker_phase(run, phase)
        else:
            measured, problem = await _consumer_phase(run, phase)
    except (PhaseError, OSError, RuntimeError, TimeoutError, LookupError) as exc:
        return {**result, "ok": False, "check": f"FAILED: {exc}"}
    result.update(events=measured.events, seconds=round(measured.seconds, 3),
                  events_per_s=round(measured.rate), events_per_cpu_s=round(measured.cpu_rate),
                  cpu_seconds=round(measured.cpu_seconds, 3),
                  peak_rss_mb=round(measured.peak_rss_mb, 1))
    return {**result, "ok": problem is None, "check": f"FAILED: {problem}" if problem else "ok"}


async def _consumer_phase(run: Run, phase: Phase) -> tuple[Measured, str | None]:
    group = f"{run.prefix}-{phase.letter}-{phase.kind}"
    state_dir = run.workdir / phase.letter
    log = run.workdir / f"{phase.letter}.log"
    process = _launch(run, phase.kind, group, state_dir, log)
    try:
        measured = await _measure(run, process.pid, group, log)
    finally:
        _stop(process)
    return measured, await CHECKS[phase.kind](run, group, state_dir)


def _launch(run: Run, kind: str, group: str, state_dir: Path,
            log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.consumers", kind, "--bootstrap", run.bootstrap,
             "--topic", run.topic, "--group", group, "--partitions", str(run.partitions),
             "--state-dir", str(state_dir), "--commit-interval", str(run.commit_interval)],
            cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)


async def _worker_phase(run: Run, phase: Phase) -> tuple[Measured, str | None]:
    worker = start_worker(run.checkout, "bench-d", run.bootstrap, run.prefix,
                          run.workdir / "d", run.partitions, run.settings)
    assert worker.process is not None
    profile = run.workdir / "d-profile.txt"
    profiler = profile_of(worker.process.pid, profile) if run.profile else None
    try:
        measured = await _measure(run, worker.process.pid, run.prefix, worker.log_path)
        await wait_until_all_ready([worker])
        problem = await http_sample(worker.url, run.expected, run.sample)
    finally:
        worker.stop()
        if profiler is not None:
            profiler.wait(timeout=STOP_WAIT)
    return measured, problem


def profile_of(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy, sampling until the process exits, as collapsed stacks (one line per stack)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    with output.with_suffix(".log").open("ab") as log:
        return subprocess.Popen([str(py_spy), "record", "--pid", str(pid), "--format", "raw",
                                 "--rate", "50", "--output", str(output)],
                                stdout=log, stderr=subprocess.STDOUT)


def start_worker(checkout: Path, name: str, bootstrap: str, prefix: str, data_dir: Path,
                 partitions: int, settings: dict[str, str] | None = None) -> Worker:
    """`python -m streams worker` run from `checkout`, configured by environment alone."""
    worker = Worker(name, bootstrap, prefix, data_dir, partitions=partitions,
                    settings=settings or {})
    if checkout.resolve() == ROOT:
        worker.start()
        return worker
    env = {**os.environ, "SHOPSTREAM_BROKER": f"kafka://{bootstrap}",
           "SHOPSTREAM_TOPIC_PREFIX": prefix, "SHOPSTREAM_PARTITIONS": str(partitions),
           "SHOPSTREAM_WEB_HOST": "127.0.0.1", "SHOPSTREAM_WEB_PORT": str(worker.port),
           "SHOPSTREAM_DATA_DIR": str(data_dir), "PYTHONDONTWRITEBYTECODE": "1",
           **{f"SHOPSTREAM_{name}": value for name, value in worker.settings.items()}}
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with worker.log_path.open("ab") as log:
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--loglevel", "info"],
            cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT)
    return worker


async def create_worker_topics(checkout: Path, bootstrap: str, prefix: str, partitions: int,
                               workdir: Path) -> None:
    """Start a worker once over the empty log, so that its topics exist before d, as a deployed
    service's do. Once, a worker whose first start found 50,000 events on the log parked them
    all: the changelog topics it had just created were not in its metadata yet (Faust's
    PartitionsMismatch, "0 partitions"); it is a race, not seen again with 2,000 events."""
    worker = start_worker(checkout, "bench-setup", bootstrap, prefix,
                          workdir / "setup", partitions)
    try:
        await wait_until_all_ready([worker])
    finally:
        worker.stop()


async def _measure(run: Run, pid: int, group: str, log: Path) -> Measured:
    admin = AIOKafkaAdminClient(bootstrap_servers=run.bootstrap)
    await admin.start()
    try:
        return await watch([pid], admin, group, run.topic, run.expected.events, run.timeout)
    except PhaseError as exc:
        raise PhaseError(f"{exc} (log: {log})") from None
    finally:
        await admin.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _raw_check(run: Run, group: str, state_dir: Path) -> str | None:
    report = state_dir / "raw.json"
    if not report.exists():
        return "the raw consumer wrote no count"
    seen = orjson.loads(report.read_bytes())
    want = {"events": run.expected.events, "version_sum": run.expected.version_sum}
    return None if seen == want else f"decoded {seen}, want {want}"


async def _committed_check(run: Run, group: str, state_dir: Path) -> str | None:
    return None  # watch() has already seen every event committed: a no-op has nothing else


async def _faust_table_check(run: Run, group: str, state_dir: Path) -> str | None:
    rows = await changelog_rows(run.bootstrap, f"{group}-products-changelog",
                                lambda key: key.decode())
    return compare_rows(run.expected, rows)


async def _quix_check(run: Run, group: str, state_dir: Path) -> str | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=run.bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith("changelog__")
                 and group in t]
    finally:
        await admin.close()
    if len(names) != 1:
        return f"expected one Quix changelog topic for {group}, found {names}"
    rows = await changelog_rows(run.bootstrap, names[0], _quix_sku)
    return compare_rows(run.expected, rows)


def _quix_sku(key: bytes) -> str | None:
    """Quix keys its state by the JSON of the message key, `|`, then the state key."""
    prefix, separator, name = key.rpartition(b"|")
    return str(orjson.loads(prefix)) if separator and name == b'"row"' else None


CHECKS: dict[str, Callable[[Run, str, Path], Awaitable[str | None]]] = {
    "raw": _raw_check, "faust-noop": _committed_check, "faust-table": _faust_table_check,
    "quix": _quix_check,
}

async def run_all(run: Run, letters: str, quiet: bool = False) -> dict[str, dict[str, Any]]:
    results = {}
    chosen = [phase for phase in PHASES if phase.letter in letters]
    with Reporter("phases a-e", len(chosen), quiet=quiet) as bar:
        for phase in chosen:
            print(f"phase {phase.letter}: {phase.title} ...", flush=True)
            results[phase.letter] = await run_phase(run, phase)
            print(f"  {_summary(results[phase.letter])}", flush=True)
            bar.advance()
    return results


def _summary(result: dict[str, Any]) -> str:
    if "events_per_s" not in result:
        return result["check"]
    return (f"{result['events_per_s']:,} events/s, {result['events_per_cpu_s']:,} per CPU-s, "
            f"peak RSS {result['peak_rss_mb']} MB, check {result['check']}")
