"""The block cache: verified SSTable blocks and decoded index segments, shared by a store's readers
(Cassandra's chunk cache, holding what a point read would otherwise read and check again).

An entry is what a reader already checked (CRC, decompression, msgpack shape), so a hit skips the
pread, the checksum and the decode. Keys are ints a reader builds from its own `cache_id` (unique
per opened reader in this process, never reused) and a slot, so a compacted-away or reopened
SSTable can never be answered from another one's entries; they simply age out.

A reader may also own a list with one slot per Data.db block (`put_slot`): the entry for block i
is keyed `cache_id | i` and is also `slots[i]`; eviction (or `clear`) sets that slot back to None,
so the reader's hit is one list index (no key object, no hash probe). The cache knows each such
reader's list by its cache_id (`_owners`; `release` drops and empties it when the reader closes), so an
entry costs no container object of its own: at 1M keys the collector's young-generation passes
over per-entry tuples cost ~0.2 us per cold get (bench/README.md, s10-eng_hit3).

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
SEGMENT_SLOT = 1 << 41  # ... and index segment i uses slot SEGMENT_SLOT | i; put_slot's block i uses i
SLOT_MASK = (1 << ID_SHIFT) - 1


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
        self._owners: dict[int, list] = {}  # cache_id >> ID_SHIFT -> a put_slot reader's slot list
        self._lock = threading.Lock()
        # get(key): the entry or None; the dict's own bound get (no Python frame on a hit)
        self.get = self._values.get

    def put(self, key: int, value, size: int) -> None:
        self.put_slot(None, key, 0, value, size)

    def put_slot(self, slots: list | None, cache_id: int, i: int, value, size: int) -> None:
        """put(cache_id | i, value, size), and while the entry stays, slots[i] is value (under
        the lock, so an eviction cannot come between). One reader (cache_id) passes one list,
        and keys none of its other entries `cache_id | i`."""
        if size > self.capacity_bytes:
            return
        key = cache_id | i
        with self._lock:
            sizes, owners = self._sizes, self._owners
            old = sizes.pop(key, None)
            if old is not None:
                self.size_bytes -= old
            while self.size_bytes + size > self.capacity_bytes:
                first, first_size = sizes.popitem(last=False)
                self.size_bytes -= first_size
                del self._values[first]
                if owners:
                    self._drop_slot(first)
            sizes[key] = size
            self._values[key] = value
            self.size_bytes += size
            if slots is not None:
                owners[cache_id >> ID_SHIFT] = slots
                slots[i] = value

    def _drop_slot(self, key: int) -> None:
        """The slot of entry `key` (if its reader owns a slot list) back to None; under the lock."""
        slots = self._owners.get(key >> ID_SHIFT)
        if slots is not None:
            slots[key & SLOT_MASK] = None

    def release(self, cache_id: int, slots: list | None = None) -> None:
        """A closing reader's slot list leaves the cache, emptied (its entries age out; the list
        holds none of them, so a closed reader keeps no block alive)."""
        with self._lock:
            self._owners.pop(cache_id >> ID_SHIFT, None)
            if slots is not None:
                slots[:] = [None] * len(slots)

    def __len__(self) -> int:
        return len(self._sizes)

    def clear(self) -> None:
        with self._lock:
            if self._owners:
                for key in self._values:
                    self._drop_slot(key)
            self._values.clear()
            self._sizes.clear()
            self.size_bytes = 0

    def check_invariants(self) -> None:
        with self._lock:
            assert self._values.keys() == self._sizes.keys()
            assert self.size_bytes == sum(self._sizes.values()) <= self.capacity_bytes
            for cid, slots in self._owners.items():
                for i, value in enumerate(slots):
                    if value is not None:
                        assert self._values.get(cid << ID_SHIFT | i) is value, f"slot {i} of {cid} is not its entry"
