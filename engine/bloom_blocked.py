"""Blocked bloom filters (Filter.db version 2): every probe of a key inside one 64-bit word.

Layout (docs/format.md "Filter.db"): m bits, m a power of two >= 64, seen as m / 64 little-endian
u64 words (word w = bytes [8w, 8w + 8); bit j of word w is bit 64w + j of the filter, so the bit
numbering is version 1's: byte b >> 3, mask 1 << (b & 7)). A key with `(h1, h2) = key_hash(key)`
(signed 64-bit integers, two's complement) sets or tests K bits of one word: its first probe is bit
`h2 & (m - 1)` of the filter (word `(h2 & (m - 1)) >> 6`, bit `h2 & 63` in it: the first probe is
version 1's first probe, one small-int test), the other K - 1 are bits `(h1 >> 6i) & 63` of the
same word for 0 <= i < K - 1 (arithmetic shift), 2 <= K <= 4.
A test is one word read and one compare: `word & mask == mask`, mask = the OR of the K bits (one
memory access per filter instead of K; the word's K bits may repeat, which the chance below counts).

Sizing: m is `sparse_spec`'s (engine/bloom.py), so at least buckets x 1.5 bits a key. K depends on
the fp chance only (`blocked_k`): the fewest probes whose chance at the *smallest* bits a key
sparse_spec gives still reaches the target. Every blocked filter of a table therefore has the same
K, and one mask per key serves all of them (and their union). A target no K <= MAX_K reaches (below
~0.004 at 1.5x Cassandra's bits; and 0.393-0.54, which get 1 bucket a key) is written as version 1
(standard) instead. A read takes the mask
from the first probe and two tables of 4,096 masks (`mask_tables`: h1's fields 0-1, then 2).

The chance of a false positive of a blocked filter with b bits a key (`blocked_fp`): the keys
in a word are Poisson with mean 64 / b; with j keys, each bit is set with chance
1 - (1 - 1/64)^(jK), and a foreign key is admitted with that chance to the power K. It is higher
than a standard filter's at the same bits (0.91% against 0.3% at 15 bits, K = 3).

Union and rows (memory only, `interleaved`): a read view keeps the OR of its blocked filters (the
union, each filter repeated to the largest m; a miss is mostly rejected there), and a copy of the
filters interleaved word by word: a key's tests of every filter read one row of adjacent words,
one cache miss instead of one per filter. Exact for the reason bloom_union.py gives (the word
index of m' dividing M is the word index mod m' / 64).
"""
from __future__ import annotations

import math
import sys
from functools import lru_cache

import numpy as _np

MAX_K = 4           # one probe from h2, the others from the 18 low bits of h1 (two mask tables of 12 bits)
WORD_BITS = 64
MAX_ROWS_BYTES = 64 << 20  # the largest interleaved copy of a read view's filters (`interleaved`)


def blocked_fp(bits_per_key: float, k: int) -> float:
    """The false-positive chance of a blocked filter (see the module docstring)."""
    lam = WORD_BITS / bits_per_key
    total, p, j = 0.0, math.exp(-lam), 0
    while j < 50 + 10 * lam:
        if j:
            p *= lam / j
        total += p * (1.0 - (1.0 - 1.0 / WORD_BITS) ** (j * k)) ** k
        j += 1
    return total


def blocked_k(fp_chance: float, min_bits_per_key: float) -> int | None:
    """The fewest K in [2, MAX_K] whose blocked_fp at min_bits_per_key reaches fp_chance, or None."""
    return next((k for k in range(2, MAX_K + 1) if blocked_fp(min_bits_per_key, k) <= fp_chance), None)


def fields_mask(h1: int, n: int) -> int:
    """The OR of bits `(h1 >> 6i) & 63` for 0 <= i < n (a key's probes after the first)."""
    mask = 0
    for i in range(0, 6 * n, 6):
        mask |= 1 << ((h1 >> i) & 63)
    return mask


def key_mask(h1: int, h2: int, k: int) -> int:
    """The K bits a key sets in its word (`word_index`), as a mask of that word."""
    return 1 << (h2 & 63) | fields_mask(h1, k - 1)


def word_index(h2: int, m: int) -> int:
    """The word (of m / 64) that holds every probe of a key whose second hash half is h2."""
    return (h2 & (m - 1)) >> 6


@lru_cache(maxsize=None)
def mask_tables(k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(lo, hi): `1 << (h2 & 63) | lo[h1 & 4095] | hi[(h1 >> 12) & 4095] == key_mask(h1, h2, k)`
    for 2 <= k <= MAX_K (h1's K - 1 fields: lo the first two, hi the third)."""
    assert 2 <= k <= MAX_K, k
    lo = tuple(fields_mask(i, min(k - 1, 2)) for i in range(4096))
    hi = tuple(fields_mask(i, max(k - 3, 0)) for i in range(4096))
    return lo, hi


def words_of(bits: bytearray):
    """The filter's bits as u64 words, indexable: a view on a little-endian host (no copy)."""
    if sys.byteorder == "little":
        return memoryview(bits).cast("Q")
    return _np.frombuffer(bits, dtype="<u8").astype("=u8").tolist()  # pragma: no cover


def set_digests(bits: bytearray, k: int, h) -> None:
    """Set the keys whose (h1, h2) digests are the rows of `h` ((n, 2) int64) in `bits`."""
    m = len(bits) * 8
    marks = _np.zeros(m, dtype=_np.bool_)
    first = h[:, 1] & (m - 1)           # the first probe (two's complement, as Python's &)
    marks[first] = True
    base = first & ~(WORD_BITS - 1)     # its word's first bit
    h1 = h[:, 0]
    for i in range(k - 1):
        marks[base + ((h1 >> (6 * i)) & 63)] = True
    arr = _np.frombuffer(bits, dtype=_np.uint8)
    arr |= _np.packbits(marks, bitorder="little")


def admit_share(bits: bytes, k: int) -> float:
    """The share of random keys a blocked filter of these bits admits: mean of (popcount / 64)^K."""
    counts = _np.unpackbits(_np.frombuffer(bits, dtype=_np.uint8)).reshape(-1, WORD_BITS).sum(axis=1)
    return float(((counts / WORD_BITS) ** k).mean())


def interleaved(filters) -> tuple[int, bytearray, object, int, object] | None:
    """(M / 64 - 1, union bits, union words, stride, row words) of blocked filters of one K, or
    None when the rows would take more than MAX_ROWS_BYTES. M is the largest m. The union is the OR
    of the filters, each repeated to M bits. Row w (stride = len(filters) words, from word
    w * stride) holds each filter's word w mod (its m / 64), in the filters' order: a key's tests of
    every filter read one row (24 bytes for three filters). One filter is its own union and row."""
    filters = list(filters)
    top = max(f.m for f in filters)
    stride = len(filters)
    if stride * top // 8 > MAX_ROWS_BYTES:
        return None
    rows = _np.zeros((top // WORD_BITS, stride), dtype="<u8")
    for i, f in enumerate(filters):
        col = _np.frombuffer(f.bits, dtype="<u8")
        rows[:, i] = _np.tile(col, top // f.m) if f.m < top else col
    raw = bytearray(rows.tobytes())
    words = words_of(raw)
    if stride == 1:
        return top // WORD_BITS - 1, raw, words, 1, words
    union = bytearray(_np.bitwise_or.reduce(rows, axis=1).astype("<u8").tobytes())
    return top // WORD_BITS - 1, union, words_of(union), stride, words
