"""One bloom test for every SSTable of a read view: the OR of their filters (kept in memory only).

Contract: `union_probe(filters)` returns `(mask, range(K - 1), bits)` or None. When it returns a
union, a key it rejects is rejected by every one of the filters (no false negatives), so a
point read that the union rejects searches no SSTable and tests no per-SSTable filter.

Why it is exact: every filter's m is a power of two (engine/bloom.py `sparse_spec`), so probe i
of a key in a filter of m bits is `(h2 + i * h1) mod m`, and for m dividing M that is
`((h2 + i * h1) mod M) mod m`. A filter of m bits repeated M / m times is therefore the same
filter at M bits; the union is the OR of every filter so repeated to the largest m (M), probed
with the smallest K of them (testing fewer of a filter's probes can only admit more). The bytes
repeat exactly because m is a multiple of 64 (bit b lives in byte b >> 3, as in Filter.db).

When there is no union (None; the read tests each SSTable's filter as before): fewer than two
filters (one filter is its own union), an "always present" filter (m == 0), any m that is not a
power of two (Filter.db files written before session 10, still read as they are), or a union so
full that it would admit more than MAX_ADMIT of all misses (fill ** K): a union that rarely
rejects costs a test without saving one. Cost: M / 8 bytes (the largest filter's size), rebuilt
by numpy each time the SSTable set changes (ColumnFamilyStore's `sstables` setter).
"""
from __future__ import annotations

import numpy as _np

from engine.bloom_blocked import interleaved, mask_tables

ALWAYS = (64, range(0), bytearray(b"\xff" * 8))  # a standard probe view that admits every key

MAX_ADMIT = 0.25  # the largest share of misses the union may admit (fill ** K) and still be used


def is_power_of_two(m: int) -> bool:
    return m > 0 and m & (m - 1) == 0


def union_probe(filters) -> tuple[int, range, bytes] | None:
    """(M - 1, range(K - 1), bits) of the OR of `filters` (BloomFilter objects), or None."""
    filters = list(filters)
    if len(filters) < 2 or not all(is_power_of_two(f.m) and f.k and not f.blocked for f in filters):
        return None
    top = max(f.m for f in filters)
    k = min(f.k for f in filters)
    union = _np.zeros(top // 8, dtype=_np.uint8)
    for f in filters:
        bits = _np.frombuffer(f.bits, dtype=_np.uint8)
        union |= _np.tile(bits, top // f.m) if f.m < top else bits
    bits = union.tobytes()
    fill = int.from_bytes(bits, "little").bit_count() / top  # numpy's bitwise_count needs numpy 2
    if fill ** k > MAX_ADMIT:
        return None
    return top - 1, range(k - 1), bits


def point_read_views(readers) -> tuple[tuple, tuple | None, tuple | None]:
    """(view, union, blocked) that ColumnFamilyStore.read_payloads tests, for SSTable readers
    (newest first). `view`: one (m, range(K - 1), bits, search) per reader, standard probes
    (BloomFilter.probe_view); a blocked filter's entry admits every key and searches with the
    reader's `get`, which tests that filter itself. `union`: union_probe of the standard filters.
    `blocked`: when every filter is blocked (bloom_blocked.py) with one K and their rows fit
    (bloom_blocked.interleaved), (M - 1, union bits, (lo, hi, union words, stride, row words,
    ((0, get_probed), ... (len(readers) - 1, get_probed)))): M the largest m, lo and hi that K's
    mask_tables, then bloom_blocked.interleaved's; else None. A key's first probe is union bit
    `h2 & (M - 1)`, its word `(h2 & (M - 1)) >> 6` (its row starts at word * stride)."""
    blooms = [s.bloom for s in readers]
    view = tuple((*(ALWAYS if s.bloom.blocked else s.bloom.probe_view()),
                  s.get if s.bloom.blocked else s.get_probed) for s in readers)
    blocked = None
    if blooms and all(b.blocked and b.k == blooms[0].k for b in blooms):
        rows = interleaved(blooms)
        if rows is not None:
            wm, ubits, union, stride, words = rows
            blocked = (wm << 6 | 63, ubits, (*mask_tables(blooms[0].k), union, stride, words,
                                             tuple(enumerate(s.get_probed for s in readers))))
    return view, union_probe(blooms), blocked
