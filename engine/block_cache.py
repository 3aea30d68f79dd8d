"""The block cache: verified SSTable blocks and decoded index segments, shared by a store's readers
(Cassandra's chunk cache and key cache, in one bounded LRU).

An entry is what a reader already checked (CRC, decompression, msgpack shape), so a hit skips the
pread, the checksum and the decode. Keys are ints a reader builds from its own `cache_id` (unique
per open reader in this process, never reused) and an offset, so a compacted-away or reopened
SSTable can never be answered from another one's entries; they simply age out.
Invariants: `size_bytes` is the sum of the sizes given to `put` for the entries held, and
`size_bytes <= capacity_bytes` after every `put` (capacity 0 holds nothing). Thread-safe: every
operation holds the cache's lock.
"""
from __future__ import annotations

import itertools
import threading

_ids = itertools.count(1)
ID_SHIFT = 42  # a key is cache_id << ID_SHIFT | slot; a slot is < 2**42 (Data.db offsets < 1 TiB ...)
SEGMENT_SLOT = 1 << 41  # ... and index segment i uses slot SEGMENT_SLOT | i


def new_cache_id() -> int:
    """A fresh id for an opened reader: its cache keys are cache_id << ID_SHIFT | slot."""
    return next(_ids) << ID_SHIFT


class BlockCache:
    __slots__ = ("capacity_bytes", "size_bytes", "hits", "requests", "_entries", "_lock")

    def __init__(self, capacity_bytes: int):
        assert capacity_bytes >= 0, capacity_bytes
        self.capacity_bytes = capacity_bytes
        self.size_bytes = 0
        self.hits = self.requests = 0  # counted by readers that want hit rates (tablestats)
        self._entries: dict[int, tuple] = {}  # key -> (size, value); least recently used first
        self._lock = threading.Lock()

    def get(self, key: int):
        with self._lock:
            entries = self._entries
            entry = entries.pop(key, None)
            if entry is None:
                return None
            entries[key] = entry  # most recently used goes last
            return entry[1]

    def put(self, key: int, value, size: int) -> None:
        if size > self.capacity_bytes:
            return
        with self._lock:
            entries = self._entries
            old = entries.pop(key, None)
            if old is not None:
                self.size_bytes -= old[0]
            entries[key] = (size, value)
            self.size_bytes += size
            while self.size_bytes > self.capacity_bytes:
                first = next(iter(entries))
                self.size_bytes -= entries.pop(first)[0]

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size_bytes = 0

    def check_invariants(self) -> None:
        with self._lock:
            assert self.size_bytes == sum(s for s, _ in self._entries.values())
            assert self.size_bytes <= self.capacity_bytes
