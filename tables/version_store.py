"""The rows of a view version built beside the resident one: one RocksDB per event-log
partition on the worker that owns it, restored from the version's compacted changelog."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import rocksdict

from streams.app import settings
from tables.view import View

CHANGELOG_POSITION = b"\x00changelog"  # the next changelog offset this database has


def group_of(view: View) -> str:
    """The consumer group a built version folds the event log with."""
    return settings.topic(f"view-{view.table_name}")


def changelog_of(view: View) -> str:
    """A built version's changelog; also the changelog of its Faust tables once it is made
    resident (`tables.registry.promoted`)."""
    return settings.topic(f"view-{view.table_name}-changelog")


class PartitionStore:
    """One partition's rows: row key -> the row's JSON, as the resident tables hold them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True))

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self.db.get(b"r" + key.encode())
        return value

    def put_many(self, rows: dict[str, bytes], changelog_next: int | None = None) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, row in rows.items():
            batch.put(b"r" + key.encode(), row)
        if changelog_next is not None:
            batch.put(CHANGELOG_POSITION, str(changelog_next).encode())
        self.db.write(batch)

    def changelog_next(self) -> int | None:
        raw = self.db.get(CHANGELOG_POSITION)
        return int(raw) if raw is not None else None

    def rows(self) -> Iterator[tuple[str, bytes]]:
        for key, value in self.db.items(from_key=b"r"):
            if not isinstance(key, bytes) or key[:1] != b"r":
                return
            yield key[1:].decode(), bytes(value)

    def close(self) -> None:
        self.db.close()


class VersionStore:
    """Every partition of one view version that this worker holds, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.partitions: dict[int, PartitionStore] = {}

    def open(self, partition: int) -> PartitionStore:
        if partition not in self.partitions:
            self.partitions[partition] = PartitionStore(self.root / f"partition-{partition}")
        return self.partitions[partition]

    def close(self, partition: int) -> None:
        store = self.partitions.pop(partition, None)
        if store is not None:
            store.close()

    def drop(self) -> None:
        """Close and delete every partition: the version is retired."""
        for partition in list(self.partitions):
            self.close(partition)
        shutil.rmtree(self.root, ignore_errors=True)
