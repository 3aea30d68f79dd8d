"""The row cache (Cassandra's row_cache_size): a bounded LRU of reconciled partitions, key ->
Partition, for a table that enables it. Invariant: an entry is the partition as every source
holds it when the entry is read; the write path invalidates a key on every write to it, and
truncate clears the cache (engine/truncation.py)."""
from __future__ import annotations

from collections import OrderedDict

from engine.partition import Partition


class RowCache:
    """Bounded LRU of reconciled partitions (key -> Partition); invalidated on every write."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.entries: OrderedDict[bytes, Partition] = OrderedDict()
        self.hits = 0
        self.requests = 0

    def get(self, key: bytes):
        self.requests += 1
        p = self.entries.get(key)
        if p is not None:
            self.hits += 1
            self.entries.move_to_end(key)
        return p

    def put(self, key: bytes, p: Partition) -> None:
        self.entries[key] = p
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
