"""Configuration from environment variables, with defaults that run on a laptop."""

import os
from dataclasses import dataclass
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(f"SHOPSTREAM_{name}", default)


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

    @classmethod
    def from_env(cls) -> "Settings":
        web_host = _env("WEB_HOST", "127.0.0.1")
        web_port = int(_env("WEB_PORT", "6066"))
        return cls(
            broker=_env("BROKER", "kafka://127.0.0.1:9092"),
            store=_env("STORE", "rocksdb://"),
            topic_prefix=_env("TOPIC_PREFIX", "shopstream"),
            partitions=int(_env("PARTITIONS", "4")),
            replication=int(_env("REPLICATION", "1")),
            web_host=web_host,
            web_port=web_port,
            advertised_url=_env("ADVERTISED_URL", f"http://{web_host}:{web_port}"),
            data_dir=Path(_env("DATA_DIR", f".shopstream-data/worker-{web_port}")),
            standby_replicas=int(_env("STANDBY_REPLICAS", "0")),
            command_wait=float(_env("COMMAND_WAIT", "5")),
            read_wait=float(_env("READ_WAIT", "5")),
        )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}.{name}"
