"""A real local Kafka and real worker processes, started and stopped by the tests."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "broker" / "kafkalocal.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_kafka_port() -> int:
    """A client port with room for three nodes: ports +1, +2 and controllers +100..+102."""
    while True:
        port = free_port()
        if port < 65000 and all(_is_free(port + offset) for offset in (1, 2, 100, 101, 102)):
            return port


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Kafka:
    directory: Path
    port: int
    nodes: int = 1
    bootstrap: str = ""
    sasl: tuple[str, str] | None = None
    """(user, password): the broker requires SASL (SCRAM-SHA-512 or PLAIN) as that user."""

    def start(self) -> str:
        env = os.environ.copy()
        if self.sasl is not None:
            env["SHOPSTREAM_KAFKA_USERNAME"], env["SHOPSTREAM_KAFKA_PASSWORD"] = self.sasl
        done = subprocess.run(
            [sys.executable, str(LAUNCHER), "start", "--nodes", str(self.nodes),
             "--dir", str(self.directory), "--port", str(self.port),
             *(["--sasl"] if self.sasl is not None else [])],
            capture_output=True, text=True, timeout=600, check=False, env=env,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the local Kafka did not start:\n{done.stdout}\n{done.stderr}")
        self.bootstrap = done.stdout.strip().splitlines()[-1]
        return self.bootstrap

    def stop(self) -> None:
        subprocess.run([sys.executable, str(LAUNCHER), "stop", "--dir", str(self.directory)],
                       capture_output=True, timeout=120, check=False)

    async def create_topic(self, name: str, partitions: int = 1) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1)])
        finally:
            await admin.close()

    def kill_node(self, node: int) -> None:
        """SIGKILL one node, as a crash would."""
        self._launch("kill", "--node", str(node))

    def start_node(self, node: int) -> None:
        """Start one node of the cluster again; returns once a metadata request sees it."""
        self._launch("start-node", "--node", str(node))

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP every node (SIGCONT with `frozen=False`): connections stay open and nothing
        answers, as when a broker hangs or the network drops packets."""
        for pid_file in self.directory.glob("node-*/pid"):
            os.kill(int(pid_file.read_text()), signal.SIGSTOP if frozen else signal.SIGCONT)

    def _launch(self, *args: str) -> None:
        done = subprocess.run([sys.executable, str(LAUNCHER), *args, "--dir", str(self.directory)],
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"kafkalocal {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


LEVERS = ("SHOPSTREAM_WRITE_BEHIND", "SHOPSTREAM_WHOLE_FETCHES", "SHOPSTREAM_WHOLE_STANDBYS")
"""Settings a run of the tests passes on to every worker, so the suites can run with a lever
turned either way (`SHOPSTREAM_WRITE_BEHIND=on python -m pytest ...`)."""


def outside_settings() -> dict[str, str]:
    """This process's environment without its SHOPSTREAM_* settings but the `LEVERS`: a worker
    under test is configured by its test (the agent tests' in-memory store must not leak into
    it)."""
    return {name: value for name, value in os.environ.items()
            if not name.startswith("SHOPSTREAM_") or name in LEVERS}


@dataclass
class Worker:
    name: str
    bootstrap: str
    prefix: str
    data_dir: Path
    partitions: int = 4
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    settings: dict[str, str] = field(default_factory=dict)
    """More SHOPSTREAM_* variables for this worker, by name without the prefix."""
    module: str = "streams"
    """What `python -m` runs: the service, or a test's variant of it."""
    paused: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.with_suffix(".log")

    def start(self) -> None:
        env = {
            **outside_settings(),
            "SHOPSTREAM_BROKER": f"kafka://{self.bootstrap}",
            "SHOPSTREAM_TOPIC_PREFIX": self.prefix,
            "SHOPSTREAM_PARTITIONS": str(self.partitions),
            "SHOPSTREAM_WEB_HOST": "127.0.0.1",
            "SHOPSTREAM_WEB_PORT": str(self.port),
            "SHOPSTREAM_DATA_DIR": str(self.data_dir),
            **{f"SHOPSTREAM_{name}": value for name, value in self.settings.items()},
        }
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "worker", "--loglevel", "info"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: no commit, no flush, no leaving the group."""
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: the process holds its partitions but neither heartbeats nor answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def wipe(self) -> None:
        """Delete the worker's local state (RocksDB); only while it is not running."""
        if self.alive():
            raise RuntimeError(f"{self.name} is running; stop or kill it before wiping")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@asynccontextmanager
async def own_pair(kafka: Kafka, root: Path, name: str,
                   **options: Any) -> AsyncIterator[list[Worker]]:
    """Two ready workers on a prefix of their own (`<name>-<hex>`), for a test that pauses,
    restarts or redeploys them; stopped afterwards, resumed first if paused."""
    prefix = f"{name}-{uuid4().hex[:8]}"
    started = [Worker(name=f"{name}-{n}", bootstrap=kafka.bootstrap, prefix=prefix,
                      data_dir=root / f"worker-{n}", **options) for n in (1, 2)]
    for worker in started:
        worker.start()
    try:
        await wait_until_all_ready(started)
        yield started
    finally:
        for worker in started:
            if worker.alive():
                worker.resume()
            worker.stop()


async def wait_until_all_ready(workers: list[Worker], timeout: float = 180.0) -> None:
    """Wait until every worker answers /ready with 200 in the same round."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            for worker in workers:
                if not worker.alive():
                    raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
            if all([await _ready(http, worker) for worker in workers]):
                return
            await asyncio.sleep(0.5)
    tails = "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in workers)
    raise TimeoutError(f"workers not ready after {timeout}s\n{tails}")


async def _ready(http: aiohttp.ClientSession, worker: Worker) -> bool:
    try:
        async with http.get(f"{worker.url}/ready") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


class Results:
    """Every command result on the results topic, by command id, as a plain consumer sees it."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.by_command: dict[str, list[dict[str, object]]] = {}
        self.arrived = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()

    async def _collect(self) -> None:
        async for record in self.consumer:
            try:
                result = orjson.loads(record.value)
                command_id = result["command_id"]
            except (orjson.JSONDecodeError, TypeError, KeyError):
                continue  # poison injected by the dead-letter tests
            async with self.arrived:
                self.by_command.setdefault(command_id, []).append(result)
                self.arrived.notify_all()

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> None:
        """Until `condition` holds, re-checked as each result arrives."""
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(condition), timeout)

    async def wait_for(self, command_id: str, count: int = 1,
                       timeout: float = 60.0) -> dict[str, object]:
        """The first result of a command, once `count` results for it have arrived."""
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(
                lambda: len(self.by_command.get(command_id, ())) >= count), timeout)
            return self.by_command[command_id][0]


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()
