"""One fault scenario's run: its own Kafka, topic prefix and workers, the load, the checks."""

import asyncio
import re
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ops.verify import read_topic
from tests.faults.changelogs import changelog_write_backs
from tests.faults.load import Load, probe_payload, probe_skus
from tests.faults.reads import Reads
from tests.integration.cluster import (
    ROOT,
    Kafka,
    Results,
    Worker,
    free_kafka_port,
    get_json,
    outside_settings,
    wait_until_all_ready,
)
from tests.integration.shop import Shop

PARTITIONS = 4
SETTLE_SECONDS = 300.0
SILENCE_SECONDS = 90.0
"""No result for this long while some are missing: those commands are lost, not slow.
Longer than the group's session timeout, so a rebalance waiting on a dead member is slow."""


@dataclass
class Scenario:
    """A fault, the cluster it needs and the load it runs under."""

    name: str
    fault: Callable[["Run"], Awaitable[None]]
    fast: bool = False
    nodes: int = 1
    workers: int = 2
    settings: dict[str, str] = field(default_factory=dict)
    commands: int = 900
    rate: float = 15.0
    duplicate_rate: float = 0.02
    seed: int = 20261123
    poison: int = 0
    """How many poison records the fault injects: the dead letters expected."""
    always_answers: bool = False
    """Every read must be answered (fresh or flagged stale): a read that every worker answered
    with a 5xx fails the scenario."""


@dataclass
class Recovery:
    label: str
    started: float
    seconds: float | None = None


@dataclass
class Row:
    scenario: str
    commands: int = 0
    events: int = 0
    duplicates_skipped: int = 0
    dead_letters: int = 0
    mismatches: int = 0
    recovery_seconds: float | None = None
    """The worst recovery: the longest a commands partition or a view partition went unserved."""
    recoveries: dict[str, float | None] = field(default_factory=dict)
    """Per fault, until a probe command in every commands partition had its result."""
    faults_at: dict[str, float] = field(default_factory=dict)
    """Per fault, when it happened: seconds since the run began."""
    unserved: dict[str, float] = field(default_factory=dict)
    """Per view and partition, the longest a client's reads of it went unanswered."""
    reads: int = 0
    stale_reads: int = 0
    answers_5xx: int = 0
    reads_5xx: int = 0
    unanswered: dict[str, int] = field(default_factory=dict)
    """Tracked view reads that were not a 200, by status (599: no worker answered)."""
    gaps: list[dict[str, Any]] = field(default_factory=list)
    """Each time a view partition went unserved (see tests/faults/reads.py)."""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


class Run:
    """The cluster and the load of one scenario, and what the fault functions act on."""

    def __init__(self, scenario: Scenario, root: Path) -> None:
        self.scenario, self.root = scenario, root
        self.kafka = Kafka(directory=root / "kafka", port=free_kafka_port(), nodes=scenario.nodes)
        self.prefix = f"faults-{scenario.name}-{uuid4().hex[:6]}"
        self.workers: list[Worker] = []
        self.recoveries: list[Recovery] = []
        self._watchers: list[asyncio.Task[None]] = []
        self._started = 0
        self.began = time.monotonic()

    async def __aenter__(self) -> "Run":
        try:
            await asyncio.to_thread(self.kafka.start)
            for _ in range(self.scenario.workers):
                self.add_worker()
            await self.ready()
        except BaseException:
            await self._stop_cluster()
            raise
        self.producer = AIOKafkaProducer(bootstrap_servers=self.kafka.bootstrap, acks="all")
        await self.producer.start()
        consumer = AIOKafkaConsumer(f"{self.prefix}.command-results",
                                    bootstrap_servers=self.kafka.bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        self.results = Results(consumer)
        self.results.start()
        self.shop = Shop(self.producer, self.prefix, self.results, self.scenario.seed, acked=True)
        self.probes = Shop(self.producer, self.prefix, self.results, self.scenario.seed + 1,
                           acked=True)
        self.load = Load(self.shop, self.scenario.duplicate_rate)
        return self

    async def __aexit__(self, *_: object) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        await self.results.stop()
        await self.producer.stop()
        await self._stop_cluster()

    async def _stop_cluster(self) -> None:
        for worker in self.workers:
            if worker.alive():
                worker.resume()
            await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(self.kafka.stop)

    def add_worker(self) -> Worker:
        self._started += 1
        worker = Worker(name=f"worker-{self._started}", bootstrap=self.kafka.bootstrap,
                        prefix=self.prefix, data_dir=self.root / f"worker-{self._started}",
                        partitions=PARTITIONS, settings={
                            "REPLICATION": str(min(self.scenario.nodes, 3)),
                            **self.scenario.settings})
        worker.start()
        self.workers.append(worker)
        return worker

    async def ready(self, timeout: float = 300.0) -> None:
        await wait_until_all_ready([w for w in self.workers if w.alive()], timeout)

    async def until_sent(self, fraction: float) -> None:
        """Until the load has sent `fraction` of its commands."""
        async def enough() -> bool:
            return len(self.shop.sent) >= fraction * self.scenario.commands
        await until(enough, SETTLE_SECONDS)

    def fault(self, label: str) -> None:
        """The fault happens now: measure the time until every commands partition answers a
        probe sent now and every running worker is ready."""
        recovery = Recovery(label, time.monotonic())
        self.recoveries.append(recovery)
        self._watchers.append(asyncio.create_task(self._recover(recovery)))

    async def _recover(self, recovery: Recovery) -> None:
        ids = [await self.probes.send("RegisterProduct", sku, probe_payload(sku))
               for sku in probe_skus(PARTITIONS, str(len(self.recoveries)))]
        await self.results.wait_until(
            lambda: all(c in self.results.by_command for c in ids), SETTLE_SECONDS)
        async with aiohttp.ClientSession() as http:
            async def all_ready() -> bool:
                return all([await _answers(http, w.url, "/ready") for w in self.workers
                            if w.alive()])
            await until(all_ready, SETTLE_SECONDS)
        recovery.seconds = round(time.monotonic() - recovery.started, 1)

    def read_candidates(self) -> dict[str, list[str]]:
        """Keys with rows (or soon) in each view, for the readers to track."""
        skus, orders = self.load.skus, list(self.load.orders)
        return {"products": skus, "sales": skus, "orders": orders,
                "customer-orders": [f"cust-{n}" for n in range(1, 41)]}

    async def play(self) -> Row:
        began = time.monotonic()
        await self.load.open_shop()
        load = asyncio.create_task(self.load.run(self.scenario.commands, self.scenario.rate))
        self.began = began
        async with Reads(lambda: self.workers, PARTITIONS, self.read_candidates,
                         began) as reads:
            await self.scenario.fault(self)
            await load
            row = Row(self.scenario.name)
            row.problems += await self.settle()
        row = self.read_findings(row, reads)
        row.problems += [f"changelog write-back: {p}" for p in (
            await changelog_write_backs(self.kafka.bootstrap, self.prefix))[:20]]
        row.mismatches, row.events, verify_problems = await self.verify()
        row.problems += verify_problems
        row.problems += self.check_results()
        row.mismatches += sum(p.startswith("result:") for p in row.problems)
        sent = {**self.shop.sent, **self.probes.sent}
        row.commands = len(sent)
        row.duplicates_skipped = sum(len(answers) - 1
                                     for answers in self.results.by_command.values())
        causes = await self.dead_letters()
        row.dead_letters = sum(causes.values())
        if row.dead_letters != self.scenario.poison:
            row.problems.append(f"{row.dead_letters} dead letters, {self.scenario.poison} "
                                f"poison records injected; by cause: {dict(causes)}")
        row.recoveries = {r.label: r.seconds for r in self.recoveries}
        row.faults_at = {r.label: round(r.started - began, 1) for r in self.recoveries}
        row.recovery_seconds = worst(row)
        row.seconds = round(time.monotonic() - began, 1)
        return row

    def read_findings(self, row: Row, reads: Reads) -> Row:
        found = reads.findings
        row.unserved = reads.unserved()
        row.reads, row.stale_reads = found.reads, found.stale_reads
        row.answers_5xx, row.reads_5xx = found.answers_5xx, found.reads_5xx
        row.unanswered, row.gaps = dict(found.unanswered), found.gaps
        row.problems += [f"read: {r}" for r in found.regressions[:20]]
        if found.reads_5xx and self.scenario.always_answers:
            row.problems.append(f"read: {found.reads_5xx} reads answered 5xx by every worker")
        return row

    async def settle(self) -> list[str]:
        """Until every command sent has a result, the watchers are done and no view lags;
        or, if results stop coming while some are missing, what is missing."""
        sent = [*self.shop.sent, *self.probes.sent]
        missing = await self.results_or_silence(sent)
        if missing:
            return [f"result: no result for {len(missing)} commands, e.g. "
                    f"{[self.shop.sent.get(c) or self.probes.sent.get(c) for c in missing[:3]]}"]
        try:
            await asyncio.wait_for(asyncio.gather(*self._watchers), SETTLE_SECONDS)
            await self.ready()
            await self.quiet()
        except TimeoutError as exc:
            return [f"not settled: {exc!r}"]
        return []

    async def results_or_silence(self, sent: list[str]) -> list[str]:
        """The commands without a result, once all have one or none came for SILENCE_SECONDS."""
        counted, since = -1, time.monotonic()
        while True:
            missing = [c for c in sent if c not in self.results.by_command]
            arrived = sum(len(answers) for answers in self.results.by_command.values())
            if arrived != counted:
                counted, since = arrived, time.monotonic()
            if not missing or time.monotonic() - since > SILENCE_SECONDS:
                return missing
            await asyncio.sleep(1.0)

    async def quiet(self, timeout: float = SETTLE_SECONDS) -> None:
        """Until every projection of every partition is at its log end, twice in a row."""
        deadline = time.monotonic() + timeout
        calm = 0
        async with aiohttp.ClientSession() as http:
            while calm < 2:
                if time.monotonic() > deadline:
                    raise TimeoutError
                await asyncio.sleep(1.0)
                calm = calm + 1 if await self._caught_up(http) else 0

    async def _caught_up(self, http: aiohttp.ClientSession) -> bool:
        covered: dict[str, set[str]] = {}
        for worker in (w for w in self.workers if w.alive()):
            try:
                status, lag = await get_json(http, f"{worker.url}/lag")
            except aiohttp.ClientError:
                return False
            if status != 200:
                return False
            for name, partitions in lag["projections"].items():
                if any(p["records"] != 0 for p in partitions.values()):
                    return False
                covered.setdefault(name, set()).update(partitions)
        return bool(covered) and all(len(parts) == PARTITIONS for parts in covered.values())

    async def verify(self) -> tuple[int, int, list[str]]:
        """`python -m streams verify` against every running worker: differences, events."""
        urls = [arg for w in self.workers if w.alive() for arg in ("--url", w.url)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "streams", "verify", *urls, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**outside_settings(), "SHOPSTREAM_BROKER": f"kafka://{self.kafka.bootstrap}",
                 "SHOPSTREAM_TOPIC_PREFIX": self.prefix,
                 "SHOPSTREAM_PARTITIONS": str(PARTITIONS)})
        output = (await asyncio.wait_for(process.communicate(), SETTLE_SECONDS))[0].decode()
        summary = re.search(r"(\d+) events \(.*\), (\d+) differences", output)
        if summary is None:
            return 1, 0, [f"verify did not finish (exit {process.returncode}):\n{output[-3000:]}"]
        events, differences = int(summary[1]), int(summary[2])
        problems = [f"verify: {line[:500]}" for line in output.splitlines()[:20]
                    ] if process.returncode != 0 or differences else []
        return differences, events, problems

    def check_results(self) -> list[str]:
        """Every command's results, however many times it was answered, are one and the same."""
        problems = []
        for command_id, answers in self.results.by_command.items():
            distinct = {orjson.dumps(a, option=orjson.OPT_SORT_KEYS) for a in answers}
            if len(distinct) > 1:
                problems.append(f"result: {command_id} has {len(distinct)} different results: "
                                f"{[orjson.loads(d) for d in distinct]}")
        return problems

    async def dead_letters(self) -> Counter[str]:
        """The dead letters by the start of their error (the cause, without the record)."""
        letters = await read_topic(self.kafka.bootstrap, f"{self.prefix}.dead-letters")
        return Counter(str(orjson.loads(r.value)["error"])[:80] for r in letters)

    def logs(self, lines: int = 40) -> str:
        return "\n".join(f"--- {w.name} ({w.log_path})\n{w.log_tail(lines)}" for w in self.workers)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float,
                interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{condition.__qualname__} not true after {timeout}s")
        await asyncio.sleep(interval)


async def _answers(http: aiohttp.ClientSession, url: str, path: str) -> bool:
    try:
        async with http.get(f"{url}{path}") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def play(scenario: Scenario, root: Path) -> Row:
    """Run one scenario from a fresh Kafka to its checks; a crash is a failed row."""
    began = time.monotonic()
    try:
        async with Run(scenario, root) as run:
            row = await run.play()
            if not row.passed:
                row.problems.append(f"worker logs:\n{run.logs()}")
            return row
    except Exception as exc:
        row = Row(scenario.name, seconds=round(time.monotonic() - began, 1))
        row.problems.append(f"{type(exc).__name__}: {exc}")
        return row


def worst(row: Row) -> float | None:
    """The longest any partition went unserved: a fault's probe recovery or a view gap."""
    times = [t for t in [*row.recoveries.values(), *row.unserved.values()] if t is not None]
    return max(times) if times else None


def as_json(row: Row) -> dict[str, Any]:
    return {**row.__dict__, "passed": row.passed}
