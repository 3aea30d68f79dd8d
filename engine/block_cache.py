"""The block cache: verified SSTable blocks and decoded index segments, shared by a store's readers
(Cassandra's chunk cache, holding what a point read would otherwise read and check again).

An entry is what a reader already checked (CRC, decompression, msgpack shape), so a hit skips the
pread, the checksum and the decode. Keys are ints a reader builds from its own `cache_id` (unique
per opened reader in this process, never reused) and a slot, so a compacted-away or reopened
SSTable can never be answered from another one's entries; they simply age out.

A reader may also own a list with one slot per Data.db block (`put_slot`): the cache stores the
entry under its key as usual and also in `slots[i]`, and eviction sets `slots[i]` back to None, so
the reader's hit is one list index (no key object, no hash probe: ~0.25 us less per point read
at 1M keys, bench/README.md).

Eviction is first in, first out: a hit is one dict lookup (or list index) with no reordering and
no lock (a random point-read workload gains nothing from LRU order, and the read path pays for
every operation). Invariants: `size_bytes` is the sum of the sizes given to `put` for the entries
held, and `size_bytes <= capacity_bytes` after every `put` (capacity 0 holds nothing); a slot
is not None only while the cache holds its entry (same object); `put` and eviction hold the
lock, `get` is a single atomic dict lookup.
"""
from __future__ import annotations

import itertools
import threading
from collections import OrderedDict

_ids = itertools.count(1)
ID_SHIFT = 42  # a key is cache_id | slot; a Data.db block offset is a slot (files < 2 TiB) ...
SEGMENT_SLOT = 1 << 41  # ... and index segment i uses slot SEGMENT_SLOT | i


def new_cache_id() -> int:
    """A fresh id for an opened reader: its cache keys are cache_id | slot."""
    return next(_ids) << ID_SHIFT


class BlockCache:
    __slots__ = ("capacity_bytes", "size_bytes", "_values", "_sizes", "_owners", "_lock", "get")

    def __init__(self, capacity_bytes: int):
        assert capacity_bytes >= 0, capacity_bytes
        self.capacity_bytes = capacity_bytes
        self.size_bytes = 0
        self._values: dict[int, object] = {}  # key -> value
        # key -> size, in insertion order (the FIFO); an OrderedDict because evicting the first
        # key of a plain dict costs a scan over the slots its earlier deletions left behind
        self._sizes: OrderedDict[int, int] = OrderedDict()
        self._owners: dict[int, tuple[list, int]] = {}  # key -> (slots, i) of a put_slot entry
        self._lock = threading.Lock()
        # get(key): the entry or None; the dict's own bound get (no Python frame on a hit)
        self.get = self._values.get

    def put(self, key: int, value, size: int) -> None:
        self.put_slot(key, value, size, None, 0)

    def put_slot(self, key: int, value, size: int, slots: list | None, i: int) -> None:
        """put(key, value, size), and while the entry stays, slots[i] is value (if slots)."""
        if size > self.capacity_bytes:
            return
        with self._lock:
            sizes, owners = self._sizes, self._owners
            old = sizes.pop(key, None)
            if old is not None:
                self.size_bytes -= old
                self._drop_owner(key)
            while self.size_bytes + size > self.capacity_bytes:
                first, first_size = sizes.popitem(last=False)
                self.size_bytes -= first_size
                del self._values[first]
                if owners:
                    self._drop_owner(first)
            sizes[key] = size
            self._values[key] = value
            self.size_bytes += size
            if slots is not None:
                owners[key] = (slots, i)
                slots[i] = value

    def _drop_owner(self, key: int) -> None:
        owner = self._owners.pop(key, None)
        if owner is not None:
            owner[0][owner[1]] = None

    def __len__(self) -> int:
        return len(self._sizes)

    def clear(self) -> None:
        with self._lock:
            for slots, i in self._owners.values():
                slots[i] = None
            self._owners.clear()
            self._values.clear()
            self._sizes.clear()
            self.size_bytes = 0

    def check_invariants(self) -> None:
        with self._lock:
            assert self._values.keys() == self._sizes.keys()
            assert self.size_bytes == sum(self._sizes.values()) <= self.capacity_bytes
            for key, (slots, i) in self._owners.items():
                assert slots[i] is self._values[key], f"slot of {key} is not its entry"
