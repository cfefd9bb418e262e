"""RocksDB with one memory budget per worker.

Faust opens one database per table partition, each with RocksDB's defaults sized for a
single big database (a 2 GB block cache, three 64 MB write buffers). Here every database
of the worker shares one block cache, and memtables are charged to that same cache through
one write-buffer manager, so the worker's RocksDB memory stays under one limit however many
partitions it holds.
"""

from functools import cache
from typing import Any

import rocksdict
from faust.stores import STORES, rocksdb

from streams.settings import Settings

SCHEME = "rocksdb-shared"
PER_DATABASE = {
    "write_buffer_size": 8 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024 * 1024,
    "max_open_files": 256,
}


@cache
def budget() -> tuple[rocksdict.Cache, rocksdict.WriteBufferManager]:
    limit = Settings.from_env().rocksdb_memory
    shared = rocksdict.Cache(limit)
    # Memtables may take half of the budget before RocksDB flushes them.
    memtables = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
        limit // 2, False, shared)
    return shared, memtables


class SharedOptions(rocksdb.RocksDBOptions):
    def as_options(self) -> Any:
        options = super().as_options()
        shared, memtables = budget()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(shared)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(memtables)
        return options


class Store(rocksdb.Store):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rocksdb_options = SharedOptions(**{**PER_DATABASE, **self.options},
                                             use_rocksdict=True)


STORES.aliases[SCHEME] = f"{__name__}:Store"
