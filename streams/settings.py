"""Configuration from environment variables, with defaults that run on a laptop."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SHOPSTREAM_{name}", default)


def instance_id(given: str, advertised_url: str, static: str) -> str | None:
    """The worker's static group membership id (Kafka's group.instance.id), or None for a
    dynamic member.

    A static member that restarts within the session timeout takes back its partitions
    without a rebalance. By default the id is the advertised URL in Kafka's legal characters:
    unique per worker, and the same after a restart."""
    if static.lower() in ("0", "false", "no", "off"):
        return None
    chosen = given or re.sub(r"[^a-zA-Z0-9._-]+", "-", advertised_url.split("://")[-1])
    return chosen.strip("-")[:249]


def records_or_off(given: str) -> int | None:
    """A number of records behind from which something is done another way (a bulk restore,
    a build in a process of its own); None (`off`): never."""
    if given.lower() in ("off", "false", "no"):
        return None
    return max(int(given), 1)


def gc_thresholds(given: str) -> tuple[int, int, int] | None:
    """The collector's thresholds: `python` (None: Python's own, 700, 10, 10), one number
    for generation 0 (the others Python's), or all three, comma-separated."""
    if given.lower() == "python":
        return None
    numbers = [int(part) for part in given.split(",")]
    if len(numbers) == 1:
        numbers += [10, 10]
    if len(numbers) != 3 or min(numbers) < 1:
        raise ValueError(f"SHOPSTREAM_GC_THRESHOLD is `python`, N or N,N,N (each at least 1), "
                         f"not {given!r}")
    return numbers[0], numbers[1], numbers[2]


@dataclass(frozen=True)
class Settings:
    broker: str
    store: str
    topic_prefix: str
    partitions: int
    replication: int
    web_host: str
    web_port: int
    advertised_url: str
    data_dir: Path
    standby_replicas: int
    command_wait: float
    read_wait: float
    batch_size: int
    batch_within: float
    retry_attempts: int
    retry_base: float
    retry_cap: float
    send_timeout: float
    catch_up_lookback: float
    stop_timeout: float
    write_behind: bool
    whole_fetches: bool
    whole_standbys: bool
    rocksdb_memory: int
    linger_ms: int
    max_body: int
    admin_token: str
    kafka_security_protocol: str
    kafka_sasl_mechanism: str
    kafka_username: str
    kafka_password: str
    session_timeout: float
    heartbeat_interval: float
    rebalance_timeout: float
    instance_id: str | None
    bulk_restore_from: int | None
    build_apart_from: int | None
    gc_freeze: bool
    gc_threshold: tuple[int, int, int] | None

    @classmethod
    def from_env(cls) -> "Settings":
        protocol = _env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
        if protocol not in ("PLAINTEXT", "SASL_PLAINTEXT"):
            raise ValueError(f"SHOPSTREAM_KAFKA_SECURITY_PROTOCOL is PLAINTEXT or SASL_PLAINTEXT, "
                             f"not {protocol!r}")
        mechanism = _env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper()
        if mechanism not in SASL_MECHANISMS:
            raise ValueError(f"SHOPSTREAM_KAFKA_SASL_MECHANISM is one of "
                             f"{', '.join(SASL_MECHANISMS)}, not {mechanism!r}")
        web_host = _env("WEB_HOST", "127.0.0.1")
        web_port = int(_env("WEB_PORT", "6066"))
        advertised_url = _env("ADVERTISED_URL", f"http://{web_host}:{web_port}")
        return cls(
            broker=_env("BROKER", "kafka://127.0.0.1:9092"),
            store=_env("STORE", "rocksdb-shared://"),
            topic_prefix=_env("TOPIC_PREFIX", "shopstream"),
            partitions=int(_env("PARTITIONS", "4")),
            replication=int(_env("REPLICATION", "1")),
            web_host=web_host,
            web_port=web_port,
            advertised_url=advertised_url,
            data_dir=Path(_env("DATA_DIR", f".shopstream-data/worker-{web_port}")),
            standby_replicas=int(_env("STANDBY_REPLICAS", "1")),
            command_wait=float(_env("COMMAND_WAIT", "5")),
            read_wait=float(_env("READ_WAIT", "5")),
            batch_size=int(_env("BATCH_SIZE", "1000")),
            batch_within=float(_env("BATCH_WITHIN", "0.01")),
            retry_attempts=int(_env("RETRY_ATTEMPTS", "6")),
            retry_base=float(_env("RETRY_BASE", "0.2")),
            retry_cap=float(_env("RETRY_CAP", "5")),
            send_timeout=float(_env("SEND_TIMEOUT", "15")),
            catch_up_lookback=float(_env("CATCH_UP_LOOKBACK", "60")),
            stop_timeout=float(_env("STOP_TIMEOUT", "30")),
            write_behind=_env("WRITE_BEHIND", "on").lower() in ("1", "true", "yes", "on"),
            whole_fetches=_env("WHOLE_FETCHES", "on").lower() in ("1", "true", "yes", "on"),
            whole_standbys=_env("WHOLE_STANDBYS", "on").lower() in ("1", "true", "yes", "on"),
            rocksdb_memory=int(_env("ROCKSDB_MEMORY_MB", "128")) * 1024 * 1024,
            linger_ms=int(_env("LINGER_MS", "2")),
            max_body=int(_env("MAX_BODY", str(64 * 1024))),
            admin_token=_env("ADMIN_TOKEN", ""),
            kafka_security_protocol=protocol,
            kafka_sasl_mechanism=mechanism,
            kafka_username=_env("KAFKA_USERNAME", ""),
            kafka_password=_env("KAFKA_PASSWORD", ""),
            session_timeout=float(_env("SESSION_TIMEOUT", "20")),
            heartbeat_interval=float(_env("HEARTBEAT_INTERVAL", "1")),
            rebalance_timeout=float(_env("REBALANCE_TIMEOUT", "60")),
            instance_id=instance_id(_env("INSTANCE_ID", ""), advertised_url,
                                    _env("STATIC_MEMBERSHIP", "true")),
            bulk_restore_from=records_or_off(_env("BULK_RESTORE_FROM", "10000")),
            build_apart_from=records_or_off(_env("BUILD_APART_FROM", "10000")),
            gc_freeze=_env("GC_FREEZE", "on").lower() in ("1", "true", "yes", "on"),
            gc_threshold=gc_thresholds(_env("GC_THRESHOLD", "200000")),
        )

    @property
    def bootstrap(self) -> str:
        """The broker list for a plain Kafka client: Faust's URLs without their scheme."""
        return ",".join(url.strip().removeprefix("kafka://") for url in self.broker.split(";"))

    @property
    def sasl(self) -> bool:
        return self.kafka_security_protocol == "SASL_PLAINTEXT"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"
