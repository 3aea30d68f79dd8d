"""The memtable: recent writes of one table, in memory, until a flush writes them to an SSTable.

Structure chosen by measured cost (DESIGN.md): a plain dict `key -> payload` (the encoded bytes the
write arrived as), a list `[payload, payload...]` once a key is updated again (dict insert 2.0 M/s,
where a SortedDict of random-order tokens manages 0.17 M/s). No token is kept: a put neither
hashes the key nor builds a tuple for it (0.3 us of a 3.3 us put, bench/README.md, "Puts without
tokens"); the tokens are computed in one C pass over the keys (`tokens`, engine/data_block.py's
block_tokens) when the memtable is sorted or flushed, where the flush needed them anyway. Bytes
are never tracked by the cyclic garbage collector, so its full collections do not walk a
million-entry memtable (they cost 3.2 s of CPU in 2M puts when entries were tracked:
bench/README.md, "Write path at 1M keys"); readers take `[entry]` of bytes and the list's items
of a list (`payloads_of`), and a writer replaces bytes by a new list. Updates are
kept as the encoded payloads they arrived as (the commit log needed those bytes anyway) and
reconciled only when read or flushed; ordering by (token, key) is done once, by sort, at flush
(by the SSTable writer: flush_columns hands it the rows in memory order) or scan time. A partition updated many times keeps its updates as runs, like a binary counter:
8 single updates are merged into one run, and a run is merged into the one before it while
that one holds no more updates than it, so each update is re-merged O(log n) times and a
partition holds O(log n) payloads (merging everything every 8 updates made wide partitions, such
as a target's hints, quadratic: 20,000 rows took 235 s). Invariants (check_invariants): an
entry is one payload (bytes, no weights) or a list of >= 1 payloads with one weight each, weights
of merged runs non-increasing; a sorted key list holds the keys' tokens; size_bytes is the sum of
payload and key lengths (plus 64 per key).
"""
from __future__ import annotations

from operator import itemgetter

import numpy as _np

from engine.data_block import block_tokens
from engine.partition import Partition, decode_partition, encode_partition, merge_all
from engine.partition_stats import PartitionStats

_token_of_pair = itemgetter(0)
_first, _second, _third = itemgetter(0), itemgetter(1), itemgetter(2)
_RUN = 8  # this many single updates of a partition are merged into one run


def payloads_of(entry) -> list:
    """The payloads of a memtable entry, oldest first: [entry] of bytes, a copy of a list."""
    return list(entry) if entry.__class__ is list else [entry]


def one_per_entry(entries: list, many) -> list:
    """One item per memtable entry: bytes as they are, a list of one payload as that payload, a
    longer list as many(entry) (`list`: a copy of its payloads; `_reconciled`: one payload)."""
    return [e if e.__class__ is not list else e[0] if len(e) == 1 else many(e) for e in entries]


class Memtable:
    __slots__ = ("partitions", "size_bytes", "stats", "lo", "min_position", "hi", "_sorted", "updates", "weights")

    tokens = staticmethod(block_tokens)  # keys -> their tokens, in one pass (tests give synthetic ones)

    def __init__(self, lo: tuple[int, int]):
        self.partitions: dict[bytes, bytes | list] = {}
        self.weights: dict[bytes, list[int]] = {}  # updates merged in each payload, for keys updated twice+
        self.size_bytes = 0
        self.updates = 0
        self.stats = PartitionStats()
        self.lo = lo                # commit-log position before this memtable's first record
        self.min_position = None    # position of its first record (pins commit-log segments)
        self.hi = None              # set when the memtable is switched out for flushing
        self._sorted: list | None = None

    def put(self, key: bytes, payload: bytes, update: Partition, position) -> None:
        entry = self.partitions.get(key)
        if entry is None:
            self.partitions[key] = payload  # bytes: the collector never tracks it (above)
            self._sorted = None
            self.size_bytes += len(payload) + len(key) + 64
        else:
            if entry.__class__ is not list:  # second update: a list from now on, swapped in whole
                entry = [entry, payload]
                self.partitions[key] = entry
            else:
                entry.append(payload)
            self.size_bytes += len(payload)
            weights = self.weights.get(key)
            if weights is None:
                weights = self.weights[key] = [1] * len(entry)
            else:
                weights.append(1)
            if len(weights) >= _RUN and weights[-_RUN] == 1:  # the last _RUN are single updates
                _merge_tail(entry, weights, _RUN)
                while len(weights) >= 2 and weights[-2] <= weights[-1]:
                    _merge_tail(entry, weights, 2)
        if update is not None:  # None: put_plain adds the statistics itself
            self.stats.add(update)
        self.updates += 1
        if self.min_position is None and position is not None:
            self.min_position = position

    def put_plain(self, key: bytes, payload: bytes, ts: int, cells: int, tombstones: int,
                  now_s: int, position) -> None:
        """put() of a plain insert (plain_insert.encode_plain_insert) without its Partition: `cells`
        cells all written at `ts` (the marker included), `tombstones` of them nulls deleted at
        `now_s`, no TTL. The statistics end as stats.add(decode_partition(payload)) leaves them.
        `payload` is a new object, never one this memtable holds (each write encodes its own; a
        Batch applies its writes once), so one probe tells a new key: the dict answers `payload`
        itself (a test of the dict's growth instead cost 40 ns a put, bench/README.md)."""
        if self.partitions.setdefault(key, payload) is not payload:
            self.put(key, payload, None, position)
        else:  # put() of a new key, inlined
            self._sorted = None
            self.size_bytes += len(payload) + len(key) + 64
            self.updates += 1
            if self.min_position is None:
                self.min_position = position
        stats = self.stats
        if ts < stats.min_timestamp:
            stats.min_timestamp = ts
        if ts > stats.max_timestamp:
            stats.max_timestamp = ts
        stats.cell_count += cells
        if tombstones:
            _count_tombstones(stats, tombstones, now_s)

    def put_plain_many(self, keys: list, payloads: list, infos: list, position) -> None:
        """put_plain() of each (key, payload, *info) in order, info = (ts, cells, tombstones,
        now_s): one dict update and the statistics in bulk when every key is new to the
        memtable and to the batch (the common batch), else one put_plain each."""
        if not self._put_new(keys, payloads, position):
            put_plain = self.put_plain
            for key, payload, info in zip(keys, payloads, infos):
                put_plain(key, payload, *info, position)
            return
        stats = self.stats
        self._note_timestamps([*map(_first, infos)])
        stats.cell_count += sum(map(_second, infos))
        if any(map(_third, infos)):  # nulls: their tombstones, as put_plain counts them
            for _, _, tombstones, now_s in infos:
                if tombstones:
                    _count_tombstones(stats, tombstones, now_s)

    def put_plain_rows(self, keys: list, payloads: list, stamps: list, cells: int, position) -> None:
        """put_plain_many() of rows of `cells` cells each without nulls, row i written at stamps[i]."""
        if not self._put_new(keys, payloads, position):
            put_plain = self.put_plain
            for key, payload, ts in zip(keys, payloads, stamps):
                put_plain(key, payload, ts, cells, 0, 0, position)
            return
        self._note_timestamps(stamps)
        self.stats.cell_count += cells * len(keys)

    def _put_new(self, keys: list, payloads: list, position) -> bool:
        """Put every (key, payload) in one dict update when each key is new to the memtable and
        to the batch, and return True; else put nothing and return False."""
        parts = self.partitions
        n = len(keys)
        new = dict(zip(keys, payloads))
        if len(new) != n or not parts.keys().isdisjoint(new):  # a key updated again: one by one
            return False
        if n:
            parts.update(new)
            self._sorted = None
            self.size_bytes += sum(map(len, payloads)) + sum(map(len, keys)) + 64 * n
            self.updates += n
            if self.min_position is None:
                self.min_position = position
        return True

    def _note_timestamps(self, stamps: list) -> None:
        if stamps:
            stats = self.stats
            low, high = min(stamps), max(stamps)
            if low < stats.min_timestamp:
                stats.min_timestamp = low
            if high > stats.max_timestamp:
                stats.max_timestamp = high

    def __len__(self) -> int:
        return len(self.partitions)

    def get(self, key: bytes) -> list[bytes] | None:
        """The payloads held for `key`, oldest first (not reconciled), or None."""
        entry = self.partitions.get(key)
        return None if entry is None else payloads_of(entry)

    def sorted_keys(self) -> list[tuple[int, bytes]]:
        """(token, key) of every key, sorted; cached until a key is added. A scan sorts without
        the write lock, so a writer's `_sorted = None` can land before the scan stores a list
        made without the new key: a cached list shorter than the dict is stale (keys are never
        removed) and is sorted again."""
        keys = self._sorted
        if keys is None or len(keys) != len(self.partitions):
            held = [*self.partitions]
            toks = self.tokens(held)
            keys = [*zip(toks, held)]
            if len(set(toks)) == len(keys):  # (checked in memory order: cheap)
                keys.sort(key=_token_of_pair)  # int comparisons: 2.6x faster than sorting the pairs
            else:
                keys.sort()  # two keys share a token: order those by key too (rare)
            self._sorted = keys
        return keys

    def flush_items(self):
        """(token, key, payload) once per partition, reconciled, in (token, key) order: an
        iterator over three sequences gathered in C. Payloads are read from the entries in
        memory order, the tokens computed in one pass over the keys, and numpy sorts an order of
        indexes by token (int64: every Murmur3 token fits), so no key is looked up again and no
        entry is read in random order (bench/README.md, "Puts at 1M keys"). A flush takes
        flush_columns(), unsorted."""
        keys, payloads = self.flush_columns()
        n = len(keys)
        toks = self.tokens(keys)
        if n < 2:
            return zip(toks, keys, payloads)
        arr = _np.fromiter(toks, _np.int64, n)
        order = arr.argsort()  # not stable: used only when no two tokens tie (5x faster, bench/README.md s10-eng_put7)
        arr = arr[order]
        if bool((arr[1:] > arr[:-1]).all()):  # strictly increasing: no two keys share a token
            pick = itemgetter(*order.tolist())
            return zip(arr.tolist(), pick(keys), pick(payloads))
        order = self.sorted_keys()  # two keys sharing a token: sorted_keys orders those by key
        where = dict(zip(keys, range(n)))
        return zip([tk[0] for tk in order], [tk[1] for tk in order], [payloads[where[tk[1]]] for tk in order])

    def flush_columns(self) -> tuple[list, list]:
        """(keys, payloads): one row per partition, reconciled, in memory order (the dict's),
        unsorted and without tokens: SSTableWriter.append_unsorted computes and sorts those."""
        payloads = [*self.partitions.values()]
        if self.weights:  # some key holds several payloads (a list entry): reconcile those
            payloads = one_per_entry(payloads, _reconciled)
        return [*self.partitions], payloads

    def check_invariants(self) -> None:
        for key, entry in self.partitions.items():
            weights = self.weights.get(key)
            if entry.__class__ is list:
                assert entry and weights is not None and len(weights) == len(entry), key
                runs = [w for w in weights if w > 1]
                assert runs == sorted(runs, reverse=True), key
            else:
                assert entry.__class__ is bytes and weights is None, key
        if self._sorted is not None:
            assert self._sorted == sorted(self._sorted)
            assert len(self._sorted) == len(self.partitions)
            assert [t for t, _ in self._sorted] == self.tokens([k for _, k in self._sorted])


def _count_tombstones(stats: PartitionStats, tombstones: int, now_s: int) -> None:
    """The statistics of a plain insert's `tombstones` nulls, deleted at `now_s`."""
    stats.tombstone_count += tombstones
    bucket = now_s - now_s % 60
    stats.histogram[bucket] = stats.histogram.get(bucket, 0) + tombstones
    if now_s > stats.max_local_deletion_time:
        stats.max_local_deletion_time = now_s


def _reconciled(entry: list) -> bytes:
    return encode_partition(merge_all([decode_partition(p) for p in entry]))


def _merge_tail(entry: list, weights: list[int], n: int) -> None:
    """Reconcile the last `n` payloads of an entry into one."""
    entry[-n:] = [encode_partition(merge_all([decode_partition(p) for p in entry[-n:]]))]
    weights[-n:] = [sum(weights[-n:])]
