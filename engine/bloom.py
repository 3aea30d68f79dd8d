"""Bloom filter over partition keys, sized the way Cassandra sizes it (Filter.db).

Parameters (Cassandra's `FilterFactory` + `BloomCalculations`): for `n` expected keys and a target
false-positive chance, (buckets_per_element, K) come from the `probs` table; the filter has
`m = n * buckets_per_element + 20` bits rounded up to whole 64-bit words. fp_chance >= 1.0 gives an
"always present" filter (no bits, K = 0). SSTables are written sparser (`sparse_spec`: a
power-of-two m of 1.5x-3x those bits, the fewest K that still reaches fp_chance), which lets a
table's filters be OR-ed into one (engine/bloom_union.py); a reader takes any m.

Hashing: `(h1, h2) = mmh3.hash64(key, 0, True, True)` (the two halves of standard MurmurHash3
x64_128, seed 0, as *signed* 64-bit integers: what the filters are written with, since mmh3 5.3.1
ignores the positional `signed=False` this code used to pass; asking for signed explicitly keeps
an mmh3 that honours the argument on the same bits; pinned in tests/engine/test_bloom.py).
Probe i (0 <= i < K) tests bit `(h2 + i * h1) mod m`, computed
incrementally as `idx = h2 mod m; step = h1 mod m; idx = (idx + step) mod m` (Kirsch-Mitzenmacher
double hashing; no 64-bit wrap). Bit `b` lives in byte `b >> 3` under mask `1 << (b & 7)`
(least significant bit first, as Cassandra's OffHeapBitSet). add_many sets the same bits in bulk
with numpy, from mmh3.hash_bytes (the same two halves, little-endian). Invariant: no false negatives (keys
a writer queues with deferred_add are set, in bulk, before encode() returns the bits).
Version 2 (`blocked`, what the SSTable writer writes when `bloom_blocked.blocked_k` reaches the
target): the same header and bits, but every probe of a key lands in one 64-bit word (the first
probe is version 1's, bit `h2 mod m`; the others are bits of h1 in that bit's word)
(engine/bloom_blocked.py). File layout and a worked example: docs/format.md (SSTables) ("Filter.db").
"""
from __future__ import annotations

import math
from itertools import islice

import mmh3
import numpy as _np

from engine import bloom_blocked as _blocked
from engine.encoding import U16, U32, U64, check, crc32

MAGIC = b"DTSF"
VERSION = 1          # standard: K probes anywhere in m bits
VERSION_BLOCKED = 2  # blocked: K probes in one 64-bit word (bloom_blocked.py)
SPARSE_FACTOR = 1.5  # sparse_spec: at least this many times Cassandra's bits per key
EXCESS = 20  # Cassandra's BloomCalculations.EXCESS / FilterFactory.BITSET_EXCESS

# Cassandra's BloomCalculations.probs[buckets_per_element][K]: false-positive probability.
PROBS: tuple[tuple[float, ...], ...] = (
    (1.0,),
    (1.0, 1.0),
    (1.0, 0.393, 0.4),
    (1.0, 0.283, 0.237, 0.253),
    (1.0, 0.221, 0.155, 0.147, 0.16),
    (1.0, 0.181, 0.109, 0.092, 0.092, 0.101),
    (1.0, 0.154, 0.0804, 0.0609, 0.0561, 0.0578, 0.0638),
    (1.0, 0.133, 0.0618, 0.0423, 0.0359, 0.0347, 0.0364),
    (1.0, 0.118, 0.0489, 0.0306, 0.024, 0.0217, 0.0216, 0.0229),
    (1.0, 0.105, 0.0397, 0.0228, 0.0166, 0.0141, 0.0133, 0.0135, 0.0145),
    (1.0, 0.0952, 0.0329, 0.0174, 0.0118, 0.00943, 0.00844, 0.00819, 0.00846),
    (1.0, 0.0869, 0.0276, 0.0136, 0.00864, 0.0065, 0.00552, 0.00513, 0.00509),
    (1.0, 0.08, 0.0236, 0.0108, 0.00646, 0.00459, 0.00371, 0.00329, 0.00314),
    (1.0, 0.074, 0.0203, 0.00875, 0.00492, 0.00332, 0.00255, 0.00217, 0.00199, 0.00194),
    (1.0, 0.0689, 0.0177, 0.00718, 0.00381, 0.00244, 0.00179, 0.00146, 0.00129, 0.00121,
     0.0012),
    (1.0, 0.0645, 0.0156, 0.00596, 0.003, 0.00183, 0.00128, 0.001, 8.52e-4, 7.75e-4, 7.44e-4),
    (1.0, 0.0606, 0.0138, 0.005, 0.00239, 0.00139, 9.35e-4, 7.02e-4, 5.74e-4, 5.05e-4, 4.7e-4,
     4.59e-4),
    (1.0, 0.0571, 0.0123, 0.00423, 0.00193, 0.00107, 6.92e-4, 4.99e-4, 3.94e-4, 3.35e-4,
     3.02e-4, 2.87e-4, 2.84e-4),
    (1.0, 0.054, 0.0111, 0.00362, 0.00158, 8.39e-4, 5.19e-4, 3.6e-4, 2.75e-4, 2.26e-4, 1.98e-4,
     1.83e-4, 1.76e-4),
    (1.0, 0.0513, 0.00998, 0.00312, 0.0013, 6.63e-4, 3.94e-4, 2.64e-4, 1.94e-4, 1.55e-4,
     1.32e-4, 1.18e-4, 1.11e-4, 1.09e-4),
    (1.0, 0.0488, 0.00906, 0.0027, 0.00108, 5.3e-4, 3.03e-4, 1.96e-4, 1.4e-4, 1.08e-4, 8.89e-5,
     7.77e-5, 7.12e-5, 6.79e-5, 6.71e-5),
)


_hash64 = mmh3.hash64
_hash_bytes = mmh3.hash_bytes  # the same hash as 16 bytes: h1, h2 as little-endian u64s
_CHUNK = 1 << 20               # keys hashed and set per numpy pass of add_many
_MARKS_BITS = 1 << 26          # add_many marks a bool per bit up to this filter size (64 MiB)


def key_hash(key: bytes) -> tuple[int, int]:
    """(h1, h2) of a partition key: what every filter probes (`might_contain_hash`)."""
    return _hash64(key, 0, True, True)


def _opt_k(buckets: int) -> int:
    row = PROBS[buckets]
    best = min(range(len(row)), key=lambda j: (row[j], j))  # first minimum, as Cassandra
    return max(1, best)


def bloom_spec(fp_chance: float) -> tuple[int, int]:
    """(buckets_per_element, K) for a target fp chance, as Cassandra's computeBloomSpec.

    0.01 -> (10, 5); 0.1 -> (5, 3); 0.001 -> (15, 7). Only for 0 < fp_chance < 1.0.
    """
    assert 0.0 < fp_chance < 1.0, fp_chance
    max_buckets = len(PROBS) - 1
    if fp_chance >= PROBS[2][1]:
        # Cassandra returns BloomSpecification(K=2, buckets=optK[2]=1) here; we keep its numbers.
        return _opt_k(2), 2
    if fp_chance < PROBS[max_buckets][-1]:
        raise ValueError(f"bloom_filter_fp_chance {fp_chance} is below the minimum supported "
                         f"{PROBS[max_buckets][-1]}")
    buckets = 2
    k = _opt_k(2)
    while PROBS[buckets][k] > fp_chance:
        buckets += 1
        k = _opt_k(buckets)
    while PROBS[buckets][k - 1] <= fp_chance:
        k -= 1
    return buckets, k


def false_positive_chance(bits_per_key: float, k: int) -> float:
    """(1 - e^(-K / bits_per_key))^K: the formula Cassandra's `probs` table tabulates."""
    return (1.0 - math.exp(-k / bits_per_key)) ** k


def sparse_spec(expected: int, fp_chance: float) -> tuple[int, int]:
    """(m, K) the SSTable writer uses: m = n * buckets * SPARSE_FACTOR + 20 rounded UP to a power
    of two (>= 64), K = the fewest probes whose false-positive chance at the resulting m / n still
    reaches fp_chance (never more than Cassandra's K). 1.5x-3x Cassandra's bits; fewer probes
    and a sparser fill, so a miss is rejected sooner; and m & (m - 1) == 0, so `h mod m` is
    `h & (m - 1)` and the filters of a read view tile into one union (engine/bloom_union.py).
    0.01 at 1M keys: m = 2**24 (16.8 bits a key), K = 3, fp 0.5%."""
    buckets, k_cassandra = bloom_spec(fp_chance)
    m = max(64, 1 << int(max(1, expected) * buckets * SPARSE_FACTOR + EXCESS - 1).bit_length())
    per_key = m / max(1, expected)
    k = next((j for j in range(1, k_cassandra) if false_positive_chance(per_key, j) <= fp_chance),
             k_cassandra)
    return m, k


def bits_for(expected: int, buckets: int) -> int:
    """m = n * buckets + 20, rounded up to a multiple of 64."""
    raw = max(1, expected) * buckets + EXCESS
    return (raw + 63) // 64 * 64


class BloomFilter:
    """A bit array plus K. `m == 0` means "always present" (fp_chance >= 1.0)."""

    __slots__ = ("m", "k", "bits", "blocked", "_queued")

    def __init__(self, m: int, k: int, bits: bytearray, blocked: bool = False):
        assert m % 64 == 0 and len(bits) == m // 8 and (m == 0) == (k == 0), (m, k, len(bits))
        assert not blocked or (m & (m - 1) == 0 and 2 <= k <= _blocked.MAX_K), (m, k)
        self.m = m
        self.k = k
        self.bits = bits
        self.blocked = blocked
        self._queued: list[bytes] = []   # keys of deferred_add(), in the bits once encode() ran

    @classmethod
    def create(cls, expected: int, fp_chance: float) -> "BloomFilter":
        if fp_chance >= 1.0:
            return cls(0, 0, bytearray())
        buckets, k = bloom_spec(fp_chance)
        m = bits_for(expected, buckets)
        return cls(m, k, bytearray(m // 8))

    @classmethod
    def create_sparse(cls, expected: int, fp_chance: float, blocked: bool = True) -> "BloomFilter":
        """A filter sized by `sparse_spec` (what SSTables are written with): blocked (version 2)
        with `bloom_blocked.blocked_k` probes when that reaches fp_chance at the fewest bits a key
        sparse_spec gives (and `blocked`), else standard. fp_chance >= 1.0: "always present"."""
        if fp_chance >= 1.0:
            return cls(0, 0, bytearray())
        m, k = sparse_spec(expected, fp_chance)
        kb = blocked and _blocked.blocked_k(fp_chance, bloom_spec(fp_chance)[0] * SPARSE_FACTOR)
        if kb:
            return cls(m, kb, bytearray(m // 8), blocked=True)
        return cls(m, k, bytearray(m // 8))

    def add(self, key: bytes) -> None:
        m = self.m
        if not m:
            return
        h1, h2 = _hash64(key, 0, True, True)
        bits = self.bits
        if self.blocked:  # bloom_blocked.py: bit h2 & (m - 1), then K - 1 bits of h1 in its word
            first = h2 & (m - 1)
            bits[first >> 3] |= 1 << (first & 7)
            at = first >> 6 << 3   # the word's first byte
            for i in range(0, 6 * (self.k - 1), 6):
                b = (h1 >> i) & 63
                bits[at + (b >> 3)] |= 1 << (b & 7)
            return
        idx = h2 % m
        step = h1 % m
        for _ in range(self.k):
            bits[idx >> 3] |= 1 << (idx & 7)
            idx += step
            if idx >= m:
                idx -= m

    def deferred_add(self):
        """A callable that queues a key for add(): for a filter being written (an SSTable
        writer's per-key call is then a list append); the queued keys are set by add_many at
        encode(). might_contain does not see them before that."""
        return self._queued.append

    def add_many(self, keys) -> None:
        """add() of every key of an iterable: the same bits, set in bulk (add_digests) from the
        16-byte MurmurHash3 digests, _CHUNK keys at a time (int64 temporaries of ~50 bytes a key)."""
        if not self.m:
            return
        keys = iter(keys)
        while chunk := b"".join(map(_hash_bytes, islice(keys, _CHUNK))):
            self.add_digests(_np.frombuffer(chunk, dtype="<i8").reshape(-1, 2))

    def add_digests(self, h) -> None:
        """add() of the keys whose digests are the rows of `h`, an (n, 2) int64 array of
        (h1, h2) as hash64 returns them signed (mmh3.hash_bytes read as little-endian i8: a
        flush computes them once for its tokens and this filter, engine/sstable_writer.py).
        A filter of up to _MARKS_BITS bits is marked in a bool per bit, then packed (m bytes
        of temporary); a larger one is set in place, one bit position of the byte at a time."""
        m = self.m
        if not m or not len(h):
            return
        if self.blocked:
            _blocked.set_digests(self.bits, self.k, h)
            return
        bits = _np.frombuffer(self.bits, dtype=_np.uint8)
        marks = _np.zeros(m, dtype=_np.bool_) if m <= _MARKS_BITS else None
        step = h[:, 0] % m              # numpy's % takes the divisor's sign, as Python's: 0 <= x < m
        idx = h[:, 1] % m
        for i in range(self.k):
            if i:                       # idx + step < 2m: no 64-bit wrap for any m < 2**62
                idx += step
                idx[idx >= m] -= m
            if marks is not None:
                marks[idx] = True
                continue
            byte, bit = idx >> 3, idx & 7
            for b in range(8):          # bit b of byte i is 1 << b (a repeated index sets it once)
                bits[byte[bit == b]] |= _np.uint8(1 << b)
        if marks is not None:
            bits |= _np.packbits(marks, bitorder="little")

    def might_contain(self, key: bytes) -> bool:
        return self.might_contain_hash(_hash64(key, 0, True, True))

    def might_contain_hash(self, h: tuple[int, int]) -> bool:
        """might_contain for a key whose `key_hash` is h: one hash serves every SSTable's filter."""
        m = self.m
        if not m:
            return True
        h1, h2 = h
        bits = self.bits
        if self.blocked:
            mask = _blocked.key_mask(h1, h2, self.k)
            at = _blocked.word_index(h2, m) << 3
            return int.from_bytes(bits[at:at + 8], "little") & mask == mask
        idx = h2 % m
        if not bits[idx >> 3] & (1 << (idx & 7)):
            return False
        step = h1 % m
        for _ in range(self.k - 1):
            idx += step
            if idx >= m:
                idx -= m
            if not bits[idx >> 3] & (1 << (idx & 7)):
                return False
        return True

    def probe_view(self) -> tuple[int, range, bytearray]:
        """(m, range(K - 1), bits) for a caller that tests a key's bits inline, exactly as
        might_contain_hash does: bit `h2 % m` first, then K - 1 steps of `h1 % m` (mod m).
        An "always present" filter (m == 0) is viewed as 64 set bits and no further probe, so
        the inline test needs no special case. The bits are this filter's own (no copy).
        A blocked filter has no such view (block_view)."""
        assert not self.blocked
        if not self.m:
            return 64, range(0), bytearray(b"\xff" * 8)
        return self.m, range(self.k - 1), self.bits

    def block_view(self) -> tuple[int, object]:
        """(m - 1, words) of a blocked filter: a key whose mask is `key_mask(h1, h2, K)` may be
        present exactly when `words[(h2 & (m - 1)) >> 6] & mask == mask` (might_contain_hash)."""
        assert self.blocked
        return self.m - 1, _blocked.words_of(self.bits)

    # -- Filter.db -----------------------------------------------------------------------------
    # MAGIC | u16 version | u32 K | u64 m | m/8 bytes of bits | u32 crc32(all preceding bytes);
    # version 1 standard, 2 blocked (m a power of two, K <= 10)

    def encode(self) -> bytes:
        if self._queued:
            queued, self._queued = self._queued, []
            self.add_many(queued)
        head = MAGIC + U16.pack(VERSION_BLOCKED if self.blocked else VERSION) + U32.pack(self.k) + U64.pack(self.m)
        body = head + bytes(self.bits)
        return body + U32.pack(crc32(body))

    @classmethod
    def decode(cls, buf: bytes, path: str) -> "BloomFilter":
        check(len(buf) >= 22, path, 0, "filter file is shorter than its 22-byte header + crc")
        check(buf[:4] == MAGIC, path, 0, f"bad magic {buf[:4]!r}, expected {MAGIC!r}")
        (version,) = U16.unpack_from(buf, 4)
        check(version in (VERSION, VERSION_BLOCKED), path, 4, f"unsupported filter version {version}")
        (k,) = U32.unpack_from(buf, 6)
        (m,) = U64.unpack_from(buf, 10)
        blocked = version == VERSION_BLOCKED
        check(m % 64 == 0 and (m == 0) == (k == 0) and k <= 64, path, 6,
              f"bad filter parameters m={m} K={k}")
        check(not blocked or (m & (m - 1) == 0 and 2 <= k <= _blocked.MAX_K), path, 6,
              f"bad blocked filter parameters m={m} K={k}")
        end = 18 + m // 8
        check(len(buf) == end + 4, path, 18, f"filter of {m} bits needs {end + 4} bytes, "
              f"file has {len(buf)}")
        (stored,) = U32.unpack_from(buf, end)
        check(stored == crc32(memoryview(buf)[:end]), path, end, "filter checksum mismatch")
        return cls(m, k, bytearray(buf[18:end]), blocked)
