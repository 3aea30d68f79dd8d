"""Scans as streams of blocks: a source's rows in runs, and the merge of several sources' runs.

A *block stream* yields `(tokens, keys, payloads, multi)` runs of one source's partitions in
strictly increasing (token, key) order (across runs too): an SSTable's decoded Data.db blocks, 1 to 16 a run
(sstable_reader.scan_blocks), slices of a memtable's sorted keys (`memtable_blocks`), or any
row iterator cut into runs (`row_blocks`). A payload is the partition's bytes, or a list of its
versions when the source holds several (a memtable key updated again, or a key met in several
sources by `merge_blocks`); `multi` is True when a payload of the run may be a list, and
False only when every payload is bytes.

`merge_blocks` merges block streams without a per-row heap: each round takes from every source
the entries up to the smallest last (token, key) of the sources' current runs (at least one run
is used up per round), concatenates them and sorts that by token in C (the pieces are sorted
runs, which Timsort merges); equal tokens (a key in several sources, or a token collision) take a
tuple sort and group the versions of one key into a list, as `merge.group` does row by row. When
a single source is left its runs pass through (tokens made a list); a single source is never merged.
Versions are not reconciled here (merge.reconcile does that, in any order).
A source's tokens may be a list or a numpy int64 array (SSTable runs: sstable_reader.scan_blocks
with arrays=True, so that a round's tokens are concatenated and sorted with no int made twice);
the runs `merge_blocks` yields always hold lists.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import chain, islice
from operator import itemgetter

import numpy

from engine.memtable import one_per_entry

BLOCK_ROWS = 128  # rows per run of a memtable or a row iterator
ROUND_ROWS = 2048  # at most this many held rows per round of a merge (1024 and 4096 measured slower)

_concatenate = numpy.concatenate
_int64 = numpy.int64
_first = itemgetter(0)
_second = itemgetter(1)


def lower(toks, keys, tok: int, key: bytes, lo: int = 0) -> int:
    """The first index >= lo whose (token, key) is >= (tok, key) (runs are sorted)."""
    i = bisect_left(toks, tok, lo)
    n = len(toks)
    while i < n and toks[i] == tok and keys[i] < key:
        i += 1
    return i


def upper(toks, keys, tok: int, key: bytes, lo: int = 0) -> int:
    """The first index >= lo whose (token, key) is > (tok, key)."""
    i = bisect_right(toks, tok, lo)
    while i > lo and toks[i - 1] == tok and keys[i - 1] > key:
        i -= 1
    return i


def memtable_blocks(mt, start: tuple | None, end: tuple | None, end_inclusive: bool = False):
    """The block stream of memtable `mt` over [start, end) (] if end_inclusive). Read only: the
    sorted key list is the memtable's own (replaced, never changed, by a writer); a key's
    payloads are read when its run is made."""
    keys = mt.sorted_keys()
    parts = mt.partitions
    i = 0 if start is None else bisect_left(keys, start)
    n = len(keys)
    if end is not None:
        n = (bisect_right if end_inclusive else bisect_left)(keys, end, i)
    for j in range(i, n, BLOCK_ROWS):
        run = keys[j:min(n, j + BLOCK_ROWS)]
        ks = list(map(_second, run))
        entries = list(map(parts.get, ks))
        toks = list(map(_first, run))
        if None in entries:  # not expected (a memtable never drops a key): skip it
            kept = [x for x, e in enumerate(entries) if e is not None]
            toks, ks, entries = [toks[x] for x in kept], [ks[x] for x in kept], [entries[x] for x in kept]
            if not kept:
                continue
        if list not in map(type, entries):  # one payload each (engine/memtable.py: bytes)
            yield toks, ks, entries, False
        else:  # a list entry holds a key's payloads, oldest first
            yield toks, ks, one_per_entry(entries, list), True


def row_blocks(rows):
    """A (token, key, payload) iterator in (token, key) order as a block stream."""
    rows = iter(rows)
    while True:
        run = list(islice(rows, BLOCK_ROWS))
        if not run:
            return
        toks, keys, payloads = zip(*run)
        yield list(toks), list(keys), list(payloads), False


def merge_blocks(streams: list, want: int = 0):
    """One block stream of the partitions of every stream in `streams` (module docstring).

    `want`: how many partitions the caller expects to take (a hint, 0: unknown). Rounds are
    sized to it: a round fetches runs from the source whose last fetched (token, key), its
    frontier, is the smallest until `want` rows are held, then hands out every held row up to
    the smallest frontier as one run (at most ROUND_ROWS held); without a hint (or once it is
    used up), a round hands out what the source with the smallest frontier holds. Either way
    at most one fetched run per source is left partly unused when the caller stops."""
    srcs = []  # [runs held, frontier, stream, rows held, ended]
    for stream in streams:
        stream = iter(stream)
        run = _next_run(stream)
        if run is not None:
            srcs.append([[run], (run[0][-1], run[1][-1]), stream, len(run[0]), False])
    held = sum(s[3] for s in srcs)
    while len(srcs) > 1:
        target = min(want, ROUND_ROWS)
        while True:  # fetch
            low = min(srcs, key=_frontier)
            if low[3] and held >= target:
                break
            if low[4]:  # its stream has ended
                if low[3]:
                    break  # what it holds bounds this round
                srcs.remove(low)
                if len(srcs) < 2:
                    break
                continue
            run = _next_run(low[2])
            if run is None:
                low[4] = True
                continue
            low[0].append(run)
            low[1] = (run[0][-1], run[1][-1])
            low[3] += len(run[0])
            held += len(run[0])
        if len(srcs) < 2:
            break
        bt, bk = min(map(_frontier, srcs))
        tparts, keys, payloads, multi = [], [], [], False
        for s in srcs:
            runs = s[0]
            if not runs:
                continue
            last = runs[-1]
            t = last[0]
            j = upper(t, last[1], bt, bk)
            keep = None
            if j < len(t):
                keep = (t[j:], last[1][j:], last[2][j:], last[3])
                runs[-1] = last = (t[:j], last[1][:j], last[2][:j], last[3])
            for run in runs:
                if len(run[0]):
                    tparts.append(run[0])
                    keys += run[1]
                    payloads += run[2]
                    multi = multi or run[3]
            s[0] = [keep] if keep is not None else []
            s[3] = len(keep[0]) if keep is not None else 0
        n = len(keys)
        held -= n
        want -= n
        srcs = [s for s in srcs if s[3] or not s[4]]
        if len(tparts) > 1:
            yield _sorted_run(tparts, keys, payloads, multi)
        else:
            yield _listed((tparts[0], keys, payloads, multi))
    for s in srcs:  # one source left: its held runs, then the rest of its stream
        yield from map(_listed, s[0])
        if not s[4]:
            yield from (_listed(run) for run in s[2] if len(run[0]))  # never an empty run, as above


def _frontier(src: list) -> tuple:
    return src[1]


def _next_run(stream):
    """The next non-empty run of `stream`, or None at its end."""
    for run in stream:
        if len(run[0]):
            return run
    return None


def _listed(run: tuple) -> tuple:
    """`run` with its tokens as a list (a source's may be a numpy array)."""
    toks = run[0]
    return run if toks.__class__ is list else (toks.tolist(), *run[1:])


def _sorted_run(tparts: list, keys: list, payloads: list, multi: bool) -> tuple:
    """The entries of several sorted runs (their tokens `tparts`: lists or int64 arrays; their
    keys and payloads concatenated) as one run in (token, key) order, the versions of a key met
    more than once grouped into one list."""
    arr = _concatenate(tparts).astype(_int64, copy=False)  # signed 64-bit: numpy sorts them in C, unboxed
    n = len(arr)
    order = arr.argsort(kind="stable")
    ordered = arr[order]
    if (ordered[1:] > ordered[:-1]).all():  # no token twice: the order is the (token, key) order
        pick = itemgetter(*order.tolist())
        return ordered.tolist(), pick(keys), pick(payloads), multi
    toks = arr.tolist()
    out_t, out_k, out_p = [], [], []
    for t, k, i in sorted(zip(toks, keys, range(n))):
        p = payloads[i]
        if out_k and out_k[-1] == k and out_t[-1] == t:
            prev = out_p[-1]
            out_p[-1] = list(chain(prev if type(prev) is list else (prev,), p if type(p) is list else (p,)))
            multi = True
        else:
            out_t.append(t)
            out_k.append(k)
            out_p.append(p)
    return out_t, out_k, out_p, multi
