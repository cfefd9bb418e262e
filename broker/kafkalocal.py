"""Run a real Apache Kafka (KRaft) cluster on 127.0.0.1 from Maven Central jars, without Docker."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

BROKER_DIR = Path(__file__).resolve().parent
REPO = BROKER_DIR.parent
POM = BROKER_DIR / "pom.xml"
KAFKA_VERSION: str = re.findall(r"<kafka\.version>(.+?)</kafka\.version>", POM.read_text())[0]
MARKER = ".complete"
CONTROLLER_PORT_OFFSET = 100
POLL_SECONDS = 0.25
STOP_SECONDS = 30.0
# Several nodes must fit on one small machine; G1 with a 20 ms goal is what Kafka's own scripts use.
JVM_OPTS = [
    "-Xms256m",
    "-Xmx512m",
    "-XX:MaxDirectMemorySize=256m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]
LOG4J2 = """\
status = warn
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = {logs}/server.log
appender.server.filePattern = {logs}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 20MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 2
rootLogger.level = INFO
rootLogger.appenderRef.server.ref = server
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class KafkaLocalError(RuntimeError):
    """The local cluster could not be prepared, started or reached."""


@dataclass(frozen=True)
class Cluster:
    directory: Path
    nodes: int
    port: int
    cluster_id: str
    sasl_username: str = ""
    """Set: clients must authenticate (SASL_PLAINTEXT, SCRAM-SHA-512 or PLAIN) as this user."""
    sasl_password: str = ""

    @property
    def ids(self) -> range:
        return range(1, self.nodes + 1)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.client_port(i)}" for i in self.ids)

    @property
    def client_auth(self) -> dict[str, str]:
        """An aiokafka client's keyword arguments to connect to this cluster."""
        if not self.sasl_username:
            return {}
        return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_plain_username": self.sasl_username,
                "sasl_plain_password": self.sasl_password}

    def node_dir(self, node: int) -> Path:
        return self.directory / f"node-{node}"

    def client_port(self, node: int) -> int:
        return self.port + node - 1

    def controller_port(self, node: int) -> int:
        return self.port + CONTROLLER_PORT_OFFSET + node - 1


def _info(message: str) -> None:
    print(f"kafkalocal: {message}", file=sys.stderr, flush=True)


def _resolve_dir(directory: Path | str | None) -> Path:
    default = os.environ.get("SHOPSTREAM_KAFKA_DIR") or REPO / ".kafka-local"
    return Path(directory or default).resolve()


def _load(directory: Path | str | None) -> Cluster | None:
    path = _resolve_dir(directory)
    try:
        data = json.loads((path / "cluster.json").read_text())
    except FileNotFoundError:
        return None
    return Cluster(path, data["nodes"], data["port"], data["cluster_id"],
                   data.get("sasl_username", ""), data.get("sasl_password", ""))


def _new_cluster_id() -> str:
    # Same text form as Kafka's Uuid; one starting with "-" would be parsed as a CLI flag.
    cid = "-"
    while cid.startswith("-"):
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cid


def _configure(directory: Path | str | None, nodes: int | None, port: int | None,
               sasl: tuple[str, str] | None = None) -> Cluster:
    stored = _load(directory)
    port = port or int(os.environ.get("SHOPSTREAM_KAFKA_PORT") or (stored.port if stored else 9092))
    nodes = nodes or (stored.nodes if stored else 1)
    if stored and stored.nodes != nodes:
        raise KafkaLocalError(
            f"{stored.directory} holds a {stored.nodes}-node cluster; use another --dir"
        )
    if stored and stored.port != port and any(_pid(stored.node_dir(i)) for i in stored.ids):
        raise KafkaLocalError(
            f"cluster in {stored.directory} is running on port {stored.port}; stop it first"
        )
    if stored and (stored.sasl_username, stored.sasl_password) != (sasl or ("", "")):
        raise KafkaLocalError(
            f"{stored.directory} holds a cluster {'with' if stored.sasl_username else 'without'}"
            f" these SASL credentials; use another --dir"
        )
    cluster_id = stored.cluster_id if stored else _new_cluster_id()
    username, password = sasl or ("", "")
    cluster = Cluster(_resolve_dir(directory), nodes, port, cluster_id, username, password)
    cluster.directory.mkdir(parents=True, exist_ok=True)
    record = {k: v for k, v in asdict(cluster).items() if k != "directory"}
    (cluster.directory / "cluster.json").write_text(json.dumps(record) + "\n")
    return cluster


def ensure_jars() -> Path:
    """Return the folder holding Kafka's jars, copying them from Maven Central on first use."""
    root = Path(os.environ.get("SHOPSTREAM_KAFKA_CACHE") or REPO / ".cache" / "kafka-jars")
    root = root.resolve()
    target = root / KAFKA_VERSION
    if (target / MARKER).exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{KAFKA_VERSION}-", dir=root))
    _info(f"fetching Kafka {KAFKA_VERSION} jars with Maven into {target}")
    goal = "dependency:copy-dependencies"
    cmd = ["mvn", "-q", "-B", "-f", str(POM), goal, f"-DoutputDirectory={tmp}"]
    try:
        result = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
        )
        if result.returncode:
            raise KafkaLocalError(f"maven failed:\n{result.stdout}")
        (tmp / MARKER).write_text(f"{KAFKA_VERSION}\n")
        if target.exists() and not (target / MARKER).exists():
            shutil.rmtree(target)
        with contextlib.suppress(OSError):  # another process may have finished the same copy first
            os.rename(tmp, target)
    except FileNotFoundError as exc:
        raise KafkaLocalError("mvn not found on PATH") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _server_properties(cluster: Cluster, node: int) -> str:
    client = "SASL_PLAINTEXT" if cluster.sasl_username else "PLAINTEXT"
    replicas = min(cluster.nodes, 3)
    min_isr = max(1, replicas - 1)
    settings = {
        "process.roles": "broker,controller",
        "node.id": node,
        "controller.quorum.voters": ",".join(
            f"{i}@127.0.0.1:{cluster.controller_port(i)}" for i in cluster.ids
        ),
        "listeners": f"{client}://127.0.0.1:{cluster.client_port(node)},"
        f"CONTROLLER://127.0.0.1:{cluster.controller_port(node)}",
        "advertised.listeners": f"{client}://127.0.0.1:{cluster.client_port(node)}",
        "listener.security.protocol.map": f"{client}:{client},CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": client,
        **_sasl_properties(cluster),
        "log.dirs": cluster.node_dir(node) / "data",
        "num.network.threads": 2,
        "num.io.threads": 2,
        "background.threads": 4,
        "num.replica.fetchers": 1,
        "num.recovery.threads.per.data.dir": 1,
        "log.cleaner.threads": 1,
        # The dedupe buffer is on the heap (128 MB by default) and changelog topics are compacted.
        "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
        "num.partitions": 1,
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
        # Topics are declared by the workers with their partition counts; an accidental
        # auto-created topic would get one partition and break co-partitioning.
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": 0,
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": 4,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 4,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "share.coordinator.state.topic.num.partitions": 4,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _sasl_properties(cluster: Cluster) -> dict[str, str]:
    """Clients (and brokers, between themselves) authenticate as the cluster's one user, by
    SCRAM-SHA-512 (its credential is added when the storage is formatted) or PLAIN."""
    if not cluster.sasl_username:
        return {}
    user, password = json.dumps(cluster.sasl_username), json.dumps(cluster.sasl_password)
    login = f"username={user} password={password}"
    return {
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config":
            f"org.apache.kafka.common.security.scram.ScramLoginModule required {login};",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config":
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f"{login} user_{cluster.sasl_username}={password};",
    }


def _write_node_files(cluster: Cluster, node: int) -> None:
    node_dir = cluster.node_dir(node)
    for sub in ("data", "logs"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    (node_dir / "server.properties").write_text(_server_properties(cluster, node))
    (node_dir / "log4j2.properties").write_text(LOG4J2.format(logs=node_dir / "logs"))


def _java_cmd(jars: Path, node_dir: Path, main: str, *args: str) -> list[str]:
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else "java"
    log_config = f"-Dlog4j2.configurationFile={node_dir / 'log4j2.properties'}"
    return [str(java), *JVM_OPTS, log_config, "-cp", str(jars / "*"), main, *args]


def _format(cluster: Cluster, jars: Path, nodes: list[int]) -> None:
    todo = [i for i in nodes if not (cluster.node_dir(i) / "data" / "meta.properties").exists()]
    procs = {}
    for i in todo:
        props = str(cluster.node_dir(i) / "server.properties")
        args: tuple[str, ...] = ("format", "-t", cluster.cluster_id, "-c", props)
        if cluster.sasl_username:
            scram = f"SCRAM-SHA-512=[name={cluster.sasl_username},password={cluster.sasl_password}]"
            args += ("--add-scram", scram)
        cmd = _java_cmd(jars, cluster.node_dir(i), "kafka.tools.StorageTool", *args)
        procs[i] = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    for i, proc in procs.items():
        output = proc.communicate()[0]
        if proc.returncode:
            raise KafkaLocalError(f"formatting node {i} failed:\n{output}")


def _launch(cluster: Cluster, jars: Path, node: int) -> subprocess.Popen[bytes]:
    node_dir = cluster.node_dir(node)
    cmd = _java_cmd(jars, node_dir, "kafka.Kafka", str(node_dir / "server.properties"))
    with open(node_dir / "stdout.log", "ab") as out:
        # A new session keeps the broker alive when the caller's terminal gets Ctrl-C.
        proc = subprocess.Popen(
            cmd,
            cwd=node_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (node_dir / "pid").write_text(f"{proc.pid}\n")
    _info(f"node {node} started (pid {proc.pid}), log {node_dir / 'logs' / 'server.log'}")
    return proc


def _alive(pid: int, props: Path) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap our own exited child, or it lingers as a zombie
    if not Path("/proc/self").is_dir():  # no procfs (e.g. macOS): trust the pid file
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            return True
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # The command line guards against a recycled pid; it reads empty while exec is in progress.
    return state not in ("Z", "X") and (not cmdline or str(props).encode() in cmdline)


def _pid(node_dir: Path) -> int | None:
    try:
        pid = int((node_dir / "pid").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid, node_dir / "server.properties") else None


def _failure_report(cluster: Cluster, nodes: list[int], lines: int = 30) -> str:
    parts = []
    for i in nodes:
        for log in (
            cluster.node_dir(i) / "stdout.log",
            cluster.node_dir(i) / "logs" / "server.log",
        ):
            text = log.read_text(errors="replace") if log.exists() else "(missing)\n"
            parts.append(f"--- tail of {log}\n" + "".join(text.splitlines(keepends=True)[-lines:]))
    return "".join(parts)


async def _probe(bootstrap: str, ids: set[int], auth: dict[str, str]) -> bool:
    """True if the node at bootstrap answers a metadata request listing all of ids."""
    # Imported here so stop/status/logs run on a plain python without aiokafka.
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **auth)
    try:
        await client.bootstrap()
        return ids <= {broker.nodeId for broker in client.cluster.brokers()}
    except (KafkaError, OSError):
        return False
    finally:
        await client.close()


async def _poll_ready(cluster: Cluster, deadline: float) -> None:
    while True:
        dead = [i for i in cluster.ids if _pid(cluster.node_dir(i)) is None]
        if dead:
            raise KafkaLocalError(
                f"node(s) {dead} exited during startup\n{_failure_report(cluster, dead)}"
            )
        # Ask every node itself: a killed node stays in the others' metadata until it is fenced.
        addresses = [f"127.0.0.1:{cluster.client_port(i)}" for i in cluster.ids]
        probes = (_probe(a, set(cluster.ids), cluster.client_auth) for a in addresses)
        if all(await asyncio.gather(*probes)):
            return
        if time.monotonic() > deadline:
            raise KafkaLocalError(
                f"cluster not ready in time\n{_failure_report(cluster, list(cluster.ids))}"
            )
        await asyncio.sleep(POLL_SECONDS)


def wait_ready(cluster: Cluster, timeout: float) -> None:
    """Block until every node is listed in the cluster metadata, or raise KafkaLocalError."""
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)  # refused connections are expected while nodes boot
    try:
        # Its own thread and event loop, so async callers (e.g. async test fixtures) can use it too.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, _poll_ready(cluster, time.monotonic() + timeout)).result()
    finally:
        aiokafka_log.setLevel(level)


def _start_nodes(cluster: Cluster, nodes: list[int]) -> list[subprocess.Popen[bytes]]:
    todo = [i for i in nodes if _pid(cluster.node_dir(i)) is None]
    if not todo:
        return []
    jars = ensure_jars()
    for i in todo:
        _write_node_files(cluster, i)
    _format(cluster, jars, todo)
    return [_launch(cluster, jars, i) for i in todo]


def _ready_or_stop(cluster: Cluster, timeout: float, started: bool) -> str:
    begin = time.monotonic()
    try:
        wait_ready(cluster, timeout)
    except BaseException:
        if started:
            stop(cluster.directory)
        raise
    _info(f"ready after {time.monotonic() - begin:.1f}s, data and logs in {cluster.directory}")
    return cluster.bootstrap


def start(
    nodes: int | None = None,
    directory: Path | str | None = None,
    port: int | None = None,
    timeout: float = 120.0,
    sasl: tuple[str, str] | None = None,
) -> str:
    """Start (or reuse) the cluster in the background and return its bootstrap servers;
    with `sasl` (user, password), clients must authenticate as that user."""
    cluster = _configure(directory, nodes, port, sasl)
    started = _start_nodes(cluster, list(cluster.ids))
    return _ready_or_stop(cluster, timeout, bool(started))


def start_node(node: int, directory: Path | str | None = None, timeout: float = 120.0) -> str:
    """Restart one node of an existing cluster and wait until the whole cluster answers."""
    cluster = _existing(directory, node)
    _start_nodes(cluster, [node])
    return _ready_or_stop(cluster, timeout, False)


def run_foreground(
    directory: Path | str | None = None, port: int | None = None, timeout: float = 120.0
) -> int:
    """Run one node attached to this process, forwarding SIGTERM/SIGINT; return its exit code."""
    cluster = _configure(directory, 1, port)
    if _pid(cluster.node_dir(1)):
        raise KafkaLocalError(f"a broker already runs from {cluster.directory}")
    (proc,) = _start_nodes(cluster, [1])

    def forward(signum: int, _frame: object) -> None:
        proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    print(_ready_or_stop(cluster, timeout, True), flush=True)
    code = proc.wait()
    (cluster.node_dir(1) / "pid").unlink(missing_ok=True)
    return code


def _existing(directory: Path | str | None, node: int | None = None) -> Cluster:
    cluster = _load(directory)
    if cluster is None:
        raise KafkaLocalError(f"no cluster in {_resolve_dir(directory)}; run start first")
    if node is not None and node not in cluster.ids:
        raise KafkaLocalError(f"node {node} not in 1..{cluster.nodes}")
    return cluster


def _terminate(cluster: Cluster, nodes: list[int], sig: signal.Signals, wait: float) -> list[int]:
    """Signal the running nodes, wait for them to exit; return those still alive."""
    pids = {i: pid for i in nodes if (pid := _pid(cluster.node_dir(i)))}
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + wait
    while pids and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        pids = {i: pid for i, pid in pids.items() if _pid(cluster.node_dir(i))}
    return list(pids)


def stop(directory: Path | str | None = None) -> None:
    """Stop every node (SIGTERM, then SIGKILL after STOP_SECONDS); a no-op when nothing runs."""
    cluster = _load(directory)
    if cluster is None:
        return
    nodes = list(cluster.ids)
    stuck = _terminate(cluster, nodes, signal.SIGTERM, STOP_SECONDS)
    if stuck:
        _info(f"node(s) {stuck} ignored SIGTERM for {STOP_SECONDS:.0f}s, killing")
        _terminate(cluster, stuck, signal.SIGKILL, STOP_SECONDS)
    for i in nodes:
        (cluster.node_dir(i) / "pid").unlink(missing_ok=True)


def kill_node(node: int, directory: Path | str | None = None) -> None:
    """SIGKILL one node, as a crash would."""
    cluster = _existing(directory, node)
    _terminate(cluster, [node], signal.SIGKILL, STOP_SECONDS)
    (cluster.node_dir(node) / "pid").unlink(missing_ok=True)


def status(directory: Path | str | None = None) -> int:
    """Print one line per node; return 0 if all run, 3 if none, 1 otherwise."""
    cluster = _load(directory)
    if cluster is None:
        print(f"no cluster in {_resolve_dir(directory)}")
        return 3
    alive = 0
    for i in cluster.ids:
        pid = _pid(cluster.node_dir(i))
        alive += pid is not None
        state = f"pid={pid} alive=yes" if pid else "pid=- alive=no"
        log = cluster.node_dir(i) / "logs" / "server.log"
        print(f"node {i}: {state} port={cluster.client_port(i)} log={log}")
    return 0 if alive == cluster.nodes else 3 if alive == 0 else 1


def log_paths(directory: Path | str | None = None, node: int | None = None) -> list[Path]:
    cluster = _existing(directory, node)
    return [cluster.node_dir(i) / "logs" / "server.log" for i in ([node] if node else cluster.ids)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kafkalocal.py", description=__doc__)
    commands = parser.add_subparsers(dest="cmd", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--dir", type=Path, help="default: $SHOPSTREAM_KAFKA_DIR or .kafka-local")
        return sub

    start_cmd = command("start", "start the cluster in the background, print bootstrap servers")
    start_cmd.add_argument("--nodes", type=int, choices=(1, 3))
    start_cmd.add_argument("--port", type=int, help="node 1 port (default: $SHOPSTREAM_KAFKA_PORT)")
    start_cmd.add_argument("--timeout", type=float, default=120.0)
    start_cmd.add_argument(
        "--sasl", action="store_true",
        help="require SASL (SCRAM-SHA-512 or PLAIN) as $SHOPSTREAM_KAFKA_USERNAME "
        "(default shopstream) / $SHOPSTREAM_KAFKA_PASSWORD (default shopstream-secret)",
    )
    start_cmd.add_argument(
        "--foreground", action="store_true", help="run one node attached to this process"
    )
    command("stop", "stop all nodes")
    command("status", "show nodes; exit 0 if all run, 1 if some, 3 if none")
    command("logs", "print server log paths").add_argument("--node", type=int)
    command("kill", "SIGKILL one node").add_argument("--node", type=int, required=True)
    node_cmd = command("start-node", "restart one node of an existing cluster")
    node_cmd.add_argument("--node", type=int, required=True)
    node_cmd.add_argument("--timeout", type=float, default=120.0)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.cmd == "start" and args.foreground:
            if (args.nodes or 1) != 1:
                parser.error("--foreground runs a single node")
            return run_foreground(args.dir, args.port, args.timeout)
        if args.cmd == "start":
            sasl = (os.environ.get("SHOPSTREAM_KAFKA_USERNAME") or "shopstream",
                    os.environ.get("SHOPSTREAM_KAFKA_PASSWORD") or "shopstream-secret")
            print(start(args.nodes, args.dir, args.port, args.timeout,
                        sasl if args.sasl else None))
        elif args.cmd == "start-node":
            print(start_node(args.node, args.dir, args.timeout))
        elif args.cmd == "stop":
            stop(args.dir)
        elif args.cmd == "kill":
            kill_node(args.node, args.dir)
        elif args.cmd == "logs":
            print("\n".join(map(str, log_paths(args.dir, args.node))))
        else:
            return status(args.dir)
    except KafkaLocalError as exc:
        print(f"kafkalocal: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
