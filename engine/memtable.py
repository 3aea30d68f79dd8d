"""The memtable: recent writes of one table, in memory, until a flush writes them to an SSTable.

Structure chosen by measured cost (DESIGN.md): a plain dict `key -> (token, payload)`, a list
`[token, payload, payload...]` once a key is updated again (dict insert 2.0 M/s, where a SortedDict
of random-order tokens manages 0.17 M/s). Single-update entries are tuples of an int and bytes,
which the cyclic garbage collector untracks, so its full collections do not walk a million-entry
memtable (they cost 3.2 s of CPU in 2M puts: bench/README.md, "Write path at 1M keys"); readers
take `entry[1:]` of either kind, and a writer replaces a tuple by a new list, never mutates it. Updates are
kept as the encoded payloads they arrived as (the commit log needed those bytes anyway) and
reconciled only when read or flushed; ordering by (token, key) is done once, by sort, at flush
(by the SSTable writer: flush_columns hands it the rows in memory order) or scan time. A partition updated many times keeps its updates as runs, like a binary counter:
8 single updates are merged into one run, and a run is merged into the one before it while
that one holds no more updates than it, so each update is re-merged O(log n) times and a
partition holds O(log n) payloads (merging everything every 8 updates made wide partitions, such
as a target's hints, quadratic: 20,000 rows took 235 s). Invariants (check_invariants): every
entry holds its key's token and >= 1 payload, one weight per payload, weights of merged runs
non-increasing; size_bytes is the sum of payload and key lengths.
"""
from __future__ import annotations

from operator import itemgetter

import numpy as _np

from engine.partition import Partition, decode_partition, encode_partition, merge_all
from engine.partition_stats import PartitionStats

_token_of_pair = itemgetter(0)
_payload_of_single = itemgetter(1)
_first, _second, _third = itemgetter(0), itemgetter(1), itemgetter(2)
_RUN = 8  # this many single updates of a partition are merged into one run


class Memtable:
    __slots__ = ("partitions", "size_bytes", "stats", "lo", "min_position", "hi", "_sorted", "updates", "weights")

    def __init__(self, lo: tuple[int, int]):
        self.partitions: dict[bytes, list] = {}
        self.weights: dict[bytes, list[int]] = {}  # updates merged in each payload, for keys updated twice+
        self.size_bytes = 0
        self.updates = 0
        self.stats = PartitionStats()
        self.lo = lo                # commit-log position before this memtable's first record
        self.min_position = None    # position of its first record (pins commit-log segments)
        self.hi = None              # set when the memtable is switched out for flushing
        self._sorted: list | None = None

    def put(self, token: int, key: bytes, payload: bytes, update: Partition, position) -> None:
        entry = self.partitions.get(key)
        if entry is None:
            self.partitions[key] = (token, payload)  # a tuple: the collector untracks it (below)
            self._sorted = None
            self.size_bytes += len(payload) + len(key) + 64
        else:
            if entry.__class__ is tuple:  # second update: a list from now on, swapped in whole
                entry = [*entry, payload]
                self.partitions[key] = entry
            else:
                entry.append(payload)
            self.size_bytes += len(payload)
            weights = self.weights.get(key)
            if weights is None:
                weights = self.weights[key] = [1] * (len(entry) - 1)
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

    def put_plain(self, token: int, key: bytes, payload: bytes, ts: int, cells: int, tombstones: int,
                  now_s: int, position) -> None:
        """put() of a plain insert (plain_insert.encode_plain_insert) without its Partition: `cells`
        cells all written at `ts` (the marker included), `tombstones` of them nulls deleted at
        `now_s`, no TTL. The statistics end as stats.add(decode_partition(payload)) leaves them."""
        entry = (token, payload)
        if self.partitions.setdefault(key, entry) is not entry:  # one probe for a new key
            self.put(token, key, payload, None, position)
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

    def put_plain_many(self, tokens: list, keys: list, payloads: list, infos: list, position) -> None:
        """put_plain() of each (token, key, payload, *info) in order, info = (ts, cells,
        tombstones, now_s): one dict update and the statistics in bulk when every key is new to
        the memtable and to the batch (the common batch), else one put_plain each."""
        parts = self.partitions
        n = len(keys)
        new = dict(zip(keys, zip(tokens, payloads)))
        if len(new) != n or not parts.keys().isdisjoint(new):  # a key updated again: one by one
            put_plain = self.put_plain
            for tok, key, payload, info in zip(tokens, keys, payloads, infos):
                put_plain(tok, key, payload, *info, position)
            return
        if not n:
            return
        parts.update(new)
        self._sorted = None
        self.size_bytes += sum(map(len, payloads)) + sum(map(len, keys)) + 64 * n
        self.updates += n
        if self.min_position is None:
            self.min_position = position
        stats = self.stats
        ts = [*map(_first, infos)]
        low, high = min(ts), max(ts)
        if low < stats.min_timestamp:
            stats.min_timestamp = low
        if high > stats.max_timestamp:
            stats.max_timestamp = high
        stats.cell_count += sum(map(_second, infos))
        if any(map(_third, infos)):  # nulls: their tombstones, as put_plain counts them
            for _, _, tombstones, now_s in infos:
                if tombstones:
                    _count_tombstones(stats, tombstones, now_s)

    def __len__(self) -> int:
        return len(self.partitions)

    def get(self, key: bytes) -> list[bytes] | None:
        """The payloads held for `key`, oldest first (not reconciled), or None."""
        entry = self.partitions.get(key)
        return None if entry is None else list(entry[1:])

    def sorted_keys(self) -> list[tuple[int, bytes]]:
        keys = self._sorted
        if keys is None:
            keys = [(entry[0], key) for key, entry in self.partitions.items()]
            if len(set(map(_token_of_pair, keys))) == len(keys):  # (checked in memory order: cheap)
                keys.sort(key=_token_of_pair)  # int comparisons: 2.6x faster than sorting the pairs
            else:
                keys.sort()  # two keys share a token: order those by key too (rare)
            self._sorted = keys
        return keys

    def scan(self, start: tuple | None = None, end: tuple | None = None, end_inclusive: bool = False):
        """Yield (token, key, payload) for every held payload in [start, end), ordered by (token, key)."""
        import bisect
        keys = self.sorted_keys()
        i = 0 if start is None else bisect.bisect_left(keys, start)
        parts = self.partitions
        for j in range(i, len(keys)):
            tk = keys[j]
            if end is not None and (tk > end if end_inclusive else tk >= end):
                return
            entry = parts.get(tk[1])
            if entry is None:
                continue
            for payload in entry[1:]:
                yield tk[0], tk[1], payload

    def flush_items(self):
        """(token, key, payload) once per partition, reconciled, in (token, key) order: an
        iterator over three sequences gathered in C. Tokens and payloads are read from the
        entries in memory order and numpy sorts an order of indexes by token (int64: every
        Murmur3 token fits), so no key is looked up again and no entry is read in random order
        (bench/README.md, "Puts at 1M keys"). A flush takes flush_columns(), unsorted."""
        toks, keys, payloads = self.flush_columns()
        n = len(keys)
        if n < 2:
            return zip(toks, keys, payloads)
        arr = _np.fromiter(toks, _np.int64, n)
        order = arr.argsort(kind="stable")
        arr = arr[order]
        if bool((arr[1:] > arr[:-1]).all()):  # strictly increasing: no two keys share a token
            pick = itemgetter(*order.tolist())
            return zip(arr.tolist(), pick(keys), pick(payloads))
        order = self.sorted_keys()  # two keys sharing a token: sorted_keys orders those by key
        where = dict(zip(keys, range(n)))
        return zip([tk[0] for tk in order], [tk[1] for tk in order], [payloads[where[tk[1]]] for tk in order])

    def flush_columns(self) -> tuple[list, list, list]:
        """(tokens, keys, payloads): one row per partition, reconciled, in memory order (the
        dict's), unsorted: SSTableWriter.append_unsorted sorts them."""
        entries = [*self.partitions.values()]
        toks = [*map(_token_of_pair, entries)]
        if self.weights:  # some key holds several payloads (a list entry): reconcile those
            payloads = [entry[1] if len(entry) == 2 else _reconciled(entry) for entry in entries]
        else:
            payloads = [*map(_payload_of_single, entries)]
        return toks, [*self.partitions], payloads

    def check_invariants(self) -> None:
        from engine.token import token as token_of
        for key, entry in self.partitions.items():
            assert len(entry) >= 2, key
            assert entry[0] == token_of(key), key
            weights = self.weights.get(key, [1])
            assert len(weights) == len(entry) - 1, key
            runs = [w for w in weights if w > 1]
            assert runs == sorted(runs, reverse=True), key
        if self._sorted is not None:
            assert self._sorted == sorted(self._sorted)
            assert len(self._sorted) == len(self.partitions)


def _count_tombstones(stats: PartitionStats, tombstones: int, now_s: int) -> None:
    """The statistics of a plain insert's `tombstones` nulls, deleted at `now_s`."""
    stats.tombstone_count += tombstones
    bucket = now_s - now_s % 60
    stats.histogram[bucket] = stats.histogram.get(bucket, 0) + tombstones
    if now_s > stats.max_local_deletion_time:
        stats.max_local_deletion_time = now_s


def _reconciled(entry: list) -> bytes:
    return encode_partition(merge_all([decode_partition(p) for p in entry[1:]]))


def _merge_tail(entry: list, weights: list[int], n: int) -> None:
    """Reconcile the last `n` payloads of an entry into one."""
    entry[-n:] = [encode_partition(merge_all([decode_partition(p) for p in entry[-n:]]))]
    weights[-n:] = [sum(weights[-n:])]
