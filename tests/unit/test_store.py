"""Every RocksDB database a worker opens charges one shared memory budget."""

from pathlib import Path

from streams.store import PER_DATABASE, SharedOptions, budget


def test_memtables_of_every_partition_database_are_charged_to_one_shared_cache(
    tmp_path: Path,
) -> None:
    shared, memtables = budget()
    before = memtables.get_usage()
    options = SharedOptions(**PER_DATABASE, use_rocksdict=True)
    databases = [options.open(tmp_path / f"partition-{n}") for n in range(3)]
    for database in databases:
        for n in range(2000):
            database[f"key-{n}".encode()] = b"x" * 200
    assert memtables.get_usage() > before
    assert shared.get_usage() >= memtables.get_usage()
    for database in databases:
        database.close()
