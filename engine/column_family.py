"""One table's storage on one node (Cassandra's ColumnFamilyStore): memtables, SSTables, caches.

Invariants:
* `sstables` is exactly the manifest's list, newest first; a reader is never closed while a
  read snapshot may use it (files of a compacted SSTable are unlinked, open fds stay readable);
  the list is only ever replaced, never changed in place: assigning it also publishes the
  point-read view (one tuple: every SSTable's bloom bits and its `get_probed`; then their union
  filter, bloom_union.py: set last, read first), which read_payloads reads with no lock;
* a memtable switched out for flushing stays readable in `flushing` until its SSTable is in the
  manifest, so no write is ever invisible;
* each SSTable records the commit-log interval (lo, hi] its memtable covered; replay skips
  exactly the positions covered by live SSTables of the table.
Writes are serialized by the Store's write lock; reads take a snapshot and need no lock.
"""
from __future__ import annotations

import logging
import os
import threading

import mmh3

from engine import block_merge, merge
from engine.bloom_union import point_read_views
from engine.compaction.table_compactions import TableCompactions
from engine.dropped_columns import visible, visible_partitions
from engine.errors import TombstoneOverwhelmingError
from engine.flush_worker import FlushWorkerError
from engine.manifest import Manifest
from engine.memtable import Memtable, payloads_of
from engine.row_cache import RowCache
from engine.partition import Partition, decode_partition, encode_partition, live_rows
from engine.schema import Table
from engine.sstable_files import delete_sstable, list_generations
from engine.sstable_reader import SSTableReader
from engine.sstable_writer import SSTableWriter
from engine.token import MIN_TOKEN, token as _token

log = logging.getLogger("dynatable.engine")
_hash64 = mmh3.hash64  # bloom.key_hash, inlined on the point-read path


def _without_range_tombstones(payload: bytes) -> bytes:
    """The test-only canary `canary_skip_older_range_tombstones` (ring/faults.py): a point read
    ignores the range tombstones of every SSTable but the newest holding the partition."""
    p = decode_partition(payload)
    p.ranges = []
    return encode_partition(p)


class ColumnFamilyStore(TableCompactions):
    def __init__(self, table: Table, directory: str, options: dict, clock, position):
        self.table = table
        self.directory = directory
        self.options = options
        self.clock = clock
        os.makedirs(directory, exist_ok=True)
        self.manifest = Manifest.load(directory)
        self._remove_leftovers()
        self.sstables = [
            self.adopt(SSTableReader.open(directory, gen)) for gen in sorted(self.manifest.levels, reverse=True)
        ]
        self.memtable = Memtable(position)
        self.flushing: list[Memtable] = []
        self.compacting: set[int] = set()
        self.compactions_running: dict[int, dict] = {}  # progress of each running compaction (executor)
        self.lock = threading.Lock()          # guards sstables / flushing / compacting swaps
        self.row_cache = RowCache(options["row_cache_size"]) if options["row_cache_size"] else None
        self.indexes: dict = {}               # name -> engine.secondary_index.SecondaryIndex
        self.writes = 0
        self.truncated_at_ms: int | None = None  # the last TRUNCATE's time (engine/truncation.py)
        self.stats = {"flushes": 0, "compactions": 0, "tombstone_warnings": 0, "bytes_compacted": 0}

    # -- startup ----------------------------------------------------------------------------

    def _remove_leftovers(self) -> None:
        live = set(self.manifest.levels)
        on_disk = {int(name.split("-")[1]) for name in os.listdir(self.directory)
                   if name.startswith("dt-") and name.count("-") >= 2}
        for gen in sorted(on_disk - live):
            log.info("removing leftover sstable %s generation %d (not in the manifest)", self.directory, gen)
            delete_sstable(self.directory, gen)
        for name in os.listdir(self.directory):
            if name.endswith(".tmp"):
                os.unlink(os.path.join(self.directory, name))
        missing = live - set(list_generations(self.directory))
        if missing:
            from engine.errors import CorruptionError
            raise CorruptionError(self.manifest.path, 0, f"manifest names sstables {sorted(missing)} that are missing")

    def adopt(self, reader: SSTableReader) -> SSTableReader:
        """Give a newly opened reader of this table the store's key cache size and block cache."""
        reader.key_cache_size = self.options["key_cache_size"]
        reader.block_cache = self.options.get("block_cache")
        return reader

    def persisted_intervals(self) -> list[tuple]:
        out = []
        for sst in self.sstables:
            out.extend(tuple(i) for i in sst.stats.commit_log_intervals)
        return out

    # -- writes -----------------------------------------------------------------------------

    def apply(self, token: int, key: bytes, payload: bytes, update: Partition, position) -> None:
        """Called under the Store's write lock."""
        self.memtable.put(key, payload, update, position)
        self.writes += 1
        if self.indexes:
            for index in self.indexes.values():
                index.index_update(token, key, update)
        if self.row_cache is not None:
            self.row_cache.entries.pop(key, None)

    def apply_plain(self, key: bytes, payload: bytes, ts: int, cells: int, tombstones: int,
                    now_s: int, position) -> None:
        """apply() of a plain insert (plain_insert.encode_plain_insert: `cells` cells written at
        `ts`, the marker included), without a Partition object or a token unless an index needs
        them. Called under the Store's write lock."""
        if self.indexes:
            self.apply(_token(key), key, payload, decode_partition(payload), position)
            return
        self.memtable.put_plain(key, payload, ts, cells, tombstones, now_s, position)
        self.writes += 1
        if self.row_cache is not None:
            self.row_cache.entries.pop(key, None)

    def apply_plain_many(self, keys: list, payloads: list, infos: list, position) -> None:
        """apply_plain() of a batch's plain inserts, infos[i] = (ts, cells, tombstones, now_s),
        into the memtable in bulk when no index or row cache needs them one by one.
        Called under the Store's write lock."""
        if self.indexes or self.row_cache is not None:
            apply_plain = self.apply_plain
            for key, payload, info in zip(keys, payloads, infos):
                apply_plain(key, payload, *info, position)
            return
        self.memtable.put_plain_many(keys, payloads, infos, position)
        self.writes += len(keys)

    def apply_plain_rows(self, keys: list, payloads: list, stamps: list, position) -> None:
        """apply_plain_many() of a batch's key-value lane (engine/batch.py): rows of one key
        and one column (2 cells with the marker, no nulls), written at stamps[i].
        Called under the Store's write lock."""
        if self.indexes or self.row_cache is not None:
            apply_plain = self.apply_plain
            for key, payload, ts in zip(keys, payloads, stamps):
                apply_plain(key, payload, ts, 2, 0, ts // 1_000_000, position)
            return
        self.memtable.put_plain_rows(keys, payloads, stamps, 2, position)
        self.writes += len(keys)

    def switch_memtable(self, position) -> Memtable | None:
        """Called under the Store's write lock: start a new memtable, queue the old one for flush.

        The old one joins `flushing` before the new one replaces it, so a lock-free reader
        (read_payloads) that sees the new memtable also sees the old one in `flushing`."""
        old = self.memtable
        if not old.partitions:
            return None
        old.hi = position
        with self.lock:
            self.flushing.append(old)
        self.memtable = Memtable(position)
        return old

    def flush_memtable(self, mt: Memtable, worker=None) -> SSTableReader:
        """Write a switched-out memtable to a new SSTable and make it live (no lock held while
        writing): in the flush worker's process when one is given and takes a memtable this big
        (engine/flush_worker.py), else here, or here after the worker failed."""
        with self.lock:
            gen = self.manifest.new_generation()
        keys, payloads = mt.flush_columns()
        data_stats = mt.stats.to_dict()
        data_stats.update(commit_log_intervals=((tuple(mt.lo), tuple(mt.hi)),), level=0,
                          created_ms=self.clock.wall_ms())
        options = {"expected_partitions": len(mt.partitions),
                   "bloom_fp_chance": self.table.option("bloom_filter_fp_chance"),
                   "compression": self.table.option("compression")}
        reader = None
        if worker is not None and worker.takes(mt.size_bytes):
            try:
                worker.write(self.directory, gen, options, keys, payloads, data_stats)
                reader = SSTableReader.open(self.directory, gen)
            except FlushWorkerError as e:
                log.warning("%s: flush of generation %d writes in process: %s", self.directory, gen, e)
                delete_sstable(self.directory, gen)  # what a worker killed mid-write left
        if reader is None:
            writer = SSTableWriter(self.directory, gen, **options)
            try:
                writer.append_unsorted(None, keys, payloads)  # None: the keys' Murmur3 tokens
                reader = writer.finish(data_stats)
            except BaseException:
                writer.abort()
                raise
        self.adopt(reader)
        with self.lock:
            self.manifest.commit({gen: 0}, [])
            self.sstables = [reader, *self.sstables]
            self.flushing.remove(mt)
            self.stats["flushes"] += 1
        return reader

    # -- reads ------------------------------------------------------------------------------

    @property
    def sstables(self) -> list[SSTableReader]:
        return self._sstables

    @sstables.setter
    def sstables(self, readers: list[SSTableReader]) -> None:
        """Replace the live SSTables (newest first) and the point-read view built from them."""
        readers = list(readers)  # any iterable; the view is built first, so a failure changes neither
        view, union, blocked = point_read_views(readers)  # bloom_union.py: each one self-contained
        self._sstables, self._read_view, self._read_union, self._read_blocked = readers, view, union, blocked

    def snapshot(self):
        with self.lock:
            return [self.memtable, *reversed(self.flushing)], list(self.sstables)

    def read_payloads(self, token: int | None, key: bytes) -> list[bytes] | tuple:
        """Every stored version of one partition (not reconciled; an empty tuple when none),
        without a lock: the memtable, the flushing ones, then the SSTables, in that order; a flush
        adds its SSTable before it drops its memtable from `flushing`, so a concurrent flush or
        compaction can only make a version appear twice (reconcile is idempotent), never vanish.
        `token`: the key's token, or None to compute it only if a bloom filter admits the key.
        The SSTables' union filter (engine/bloom_union.py), when there is one, is tested first.

        The hot path of every point read: one hash of the key, the memtable dict, then every
        SSTable's bloom bits tested inline (the read view); only an SSTable whose filter admits
        the key is searched (get_probed). A miss allocates nothing."""
        held = self.memtable.partitions.get(key)  # a memtable entry: a payload, or a list of them
        payloads = None if held is None else payloads_of(held)  # a miss there calls nothing
        if self.flushing:
            for mt in reversed(list(self.flushing)):
                held = mt.partitions.get(key)
                if held is not None:
                    payloads = payloads_of(held) if payloads is None else payloads + payloads_of(held)
        h1, h2 = _hash64(key, 0, True, True)  # bloom.key_hash: once for every filter
        if (blocked := self._read_blocked) is not None:  # blocked filters (bloom_blocked.py)
            mask, ubits, rest = blocked
            # the union's first probe (bit h2 & (M - 1)) and second (bit h1 & 63 of that word) as
            # byte tests: they reject most misses, with small ints; then all K probes at once
            if not ubits[(idx := h2 & mask) >> 3] & (1 << (idx & 7)):
                return () if payloads is None else payloads
            if not ubits[idx >> 6 << 3 | (h1 & 63) >> 3] & (1 << (h1 & 7)):
                return () if payloads is None else payloads
            lo, hi, union, stride, words, view = rest
            km = 1 << (idx & 63) | lo[h1 & 4095] | hi[h1 >> 12 & 4095]  # bloom_blocked.key_mask
            if union[w := idx >> 6] & km != km:
                return () if payloads is None else payloads
            at = w * stride  # the key's row: each SSTable's word, newest first
            older = False
            for i, get_probed in view:  # newest first
                if words[at + i] & km != km:
                    continue
                if token is None:  # as below
                    token = (h1 if h1 != MIN_TOKEN and key and (key.isascii() or not (tail := len(key) & 15)
                                                                or key[-tail:].isascii()) else _token(key))
                found = get_probed(token, key)
                if found is not None:
                    if older and self.options.get("canary_skip_older_range_tombstones"):
                        found = _without_range_tombstones(found)  # test-only mutant: ring/faults.py
                    older = True
                    if payloads is None:
                        payloads = [found]
                    else:
                        payloads.append(found)
            return () if payloads is None else payloads
        if (union := self._read_union) is not None:  # one test for all SSTables (bloom_union.py)
            mask, rest, bits = union
            if not bits[(idx := h2 & mask) >> 3] & (1 << (idx & 7)):
                return () if payloads is None else payloads
            step = h1 & mask
            for _ in rest:
                if not bits[(idx := (idx + step) & mask) >> 3] & (1 << (idx & 7)):
                    return () if payloads is None else payloads
        older = False  # an SSTable (newest first) already held a version
        for m, rest, bits, get_probed in self._read_view:  # newest first
            # BloomFilter.might_contain_hash, inlined (probe_view states the equivalence)
            idx = h2 % m
            if not bits[idx >> 3] & (1 << (idx & 7)):
                continue
            step = h1 % m
            for _ in rest:
                idx += step
                if idx >= m:
                    idx -= m
                if not bits[idx >> 3] & (1 << (idx & 7)):
                    break
            else:
                if token is None:  # engine/token.py: the token is h1 unless a tail byte (len % 16) is >= 0x80
                    token = (h1 if h1 != MIN_TOKEN and key and (key.isascii() or not (tail := len(key) & 15)
                                                                or key[-tail:].isascii()) else _token(key))
                found = get_probed(token, key)
                if found is not None:
                    if older and self.options.get("canary_skip_older_range_tombstones"):
                        found = _without_range_tombstones(found)  # test-only mutant: ring/faults.py
                    older = True
                    if payloads is None:
                        payloads = [found]
                    else:
                        payloads.append(found)
        return () if payloads is None else payloads

    def read_partition(self, token: int, key: bytes) -> Partition | None:
        cache = self.row_cache
        if cache is not None:
            cached = cache.get(key)
            if cached is not None:
                return visible(self.table, cached)
            writes_before = self.writes
        payloads = self.read_payloads(token, key)
        if not payloads:
            return None
        p = merge.reconcile(payloads)
        if cache is not None and self.writes == writes_before:
            cache.put(key, p)
        return visible(self.table, p)

    def guard(self, counter: list, where: str) -> None:
        scanned = counter[0]
        if scanned > self.options["tombstone_failure_threshold"]:
            raise TombstoneOverwhelmingError(scanned, self.options["tombstone_failure_threshold"], where)
        if scanned > self.options["tombstone_warn_threshold"]:
            self.stats["tombstone_warnings"] += 1
            log.warning("read %s scanned %d tombstones (warn threshold %d)", where, scanned,
                        self.options["tombstone_warn_threshold"])

    def scan_blocks(self, start: tuple | None, end: tuple | None, end_inclusive: bool = False, want: int = 0):
        """The block stream (engine/block_merge.py) of every partition in [start, end) (] if
        end_inclusive), in (token, key) order: a single source's own blocks, else the merge of
        the memtables' and SSTables' streams (a key held by several sources comes once, with
        the list of its versions); `want`: how many partitions the caller expects to take, a
        hint that sizes the merge's rounds (block_merge.merge_blocks)."""
        memtables, sstables = self.snapshot()
        sources = [block_merge.memtable_blocks(mt, start, end, end_inclusive) for mt in memtables if mt.partitions]
        arrays = len(sources) + len(sstables) > 1  # merged: the SSTables' tokens as numpy arrays
        sources += [s.scan_blocks(start, end, end_inclusive=end_inclusive, arrays=arrays) for s in sstables]
        if len(sources) == 1:
            return sources[0]
        return block_merge.merge_blocks(sources, want)

    def scan_payloads(self, start: tuple | None, end: tuple | None, end_inclusive: bool = False):
        """Yield (token, key, [payloads]) in (token, key) order over [start, end), not reconciled."""
        for toks, keys, payloads, multi in self.scan_blocks(start, end, end_inclusive):
            if multi:
                yield from zip(toks, keys, [p if type(p) is list else (p,) for p in payloads])
            else:
                yield from zip(toks, keys, zip(payloads))

    def scan_partitions(self, start: tuple | None, end: tuple | None, end_inclusive: bool = False):
        """Yield (token, key, Partition) in (token, key) order over [start, end), dropped columns hidden."""
        merged = ((token, key, merge.reconcile(payloads))
                  for token, key, payloads in self.scan_payloads(start, end, end_inclusive))
        return visible_partitions(self.table, merged)

    def live_rows(self, p: Partition, lo: bytes, hi, reverse: bool, counter: list):
        return live_rows(p, self.clock.now_s(), lo, hi, reverse, counter)

    # -- compaction -------------------------------------------------------------------------

    def check_invariants(self) -> None:
        assert [s.generation for s in self.sstables] == sorted(self.manifest.levels, reverse=True)
        assert [v[-1].__self__ for v in self._read_view] == self.sstables, "read view is stale"
        self.memtable.check_invariants()
        for s in self.sstables:
            s.check_invariants()
        for mt in self.flushing:
            assert mt.hi is not None

    def disk_bytes(self) -> int:
        return sum(s.size_bytes for s in self.sstables)

    def memtable_bytes(self) -> int:
        """The live memtable's and the flushing ones' size (gossip's LOAD counts them too)."""
        return self.memtable.size_bytes + sum(m.size_bytes for m in list(self.flushing))

    def close(self) -> None:
        for s in self.sstables:
            s.close()
