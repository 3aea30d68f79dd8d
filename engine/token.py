"""Cassandra's Murmur3Partitioner token, exactly.

token(key) = the first 64-bit half (h1) of Cassandra's MurmurHash3 x64_128 (seed 0) of the
serialized partition key, read as a signed long. Two Cassandra rules make it differ from
standard Murmur3 (`mmh3`):

* tail bytes (len % 16) are sign-extended, so keys whose tail holds a byte >= 0x80 hash
  differently; we take `mmh3`'s C code for every other key and a pure-Python port for those;
* Long.MIN_VALUE is reserved as the ring minimum: a hash equal to it becomes Long.MAX_VALUE,
  and the empty key has the minimum token. Key tokens therefore lie in [-2**63 + 1, 2**63 - 1].

`token` is cassandra-driver's `cassandra.cmurmur3.murmur3` (Cassandra's hash in C, ~0.1 us for
any key) when the driver has its C extensions; without them, `mmh3` plus the pure-Python port
below (~15 us per key whose tail has a byte >= 0x80, e.g. most 8-byte bigint keys).
Pinned by vectors in tests/engine/test_token.py; both paths are checked against each other.
"""
from __future__ import annotations

import mmh3

try:
    from cassandra.cmurmur3 import murmur3 as _cmurmur3  # h1 of Cassandra's hash3_x64_128, in C
except ImportError:  # a cassandra-driver built without its C extensions
    _cmurmur3 = None

MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1

_MASK = 0xFFFFFFFFFFFFFFFF
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F
_hash64 = mmh3.hash64


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _MASK
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _MASK
    k ^= k >> 33
    return k


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


def _block_mix(h1: int, h2: int, k1: int, k2: int) -> tuple[int, int]:
    k1 = (_rotl((k1 * _C1) & _MASK, 31) * _C2) & _MASK
    h1 ^= k1
    h1 = (_rotl(h1, 27) + h2) & _MASK
    h1 = (h1 * 5 + 0x52DCE729) & _MASK
    k2 = (_rotl((k2 * _C2) & _MASK, 33) * _C1) & _MASK
    h2 ^= k2
    h2 = (_rotl(h2, 31) + h1) & _MASK
    h2 = (h2 * 5 + 0x38495AB5) & _MASK
    return h1, h2


def cassandra_murmur3_x64_128(key: bytes, seed: int = 0) -> tuple[int, int]:
    """Cassandra's MurmurHash.hash3_x64_128 (with the sign-extension quirk) as signed longs."""
    length = len(key)
    nblocks = length >> 4
    h1 = h2 = seed & _MASK
    for i in range(nblocks):
        k1 = int.from_bytes(key[i * 16 : i * 16 + 8], "little")
        k2 = int.from_bytes(key[i * 16 + 8 : i * 16 + 16], "little")
        h1, h2 = _block_mix(h1, h2, k1, k2)
    tail = key[nblocks * 16 :]
    k1 = k2 = 0
    for i in range(len(tail) - 1, -1, -1):
        byte = tail[i]
        value = (byte - 256 if byte >= 0x80 else byte) & _MASK  # Java's (long) of a signed byte
        if i >= 8:
            k2 ^= (value << ((i - 8) * 8)) & _MASK
        else:
            k1 ^= (value << (i * 8)) & _MASK
    if len(tail) > 8:
        k2 = (_rotl((k2 * _C2) & _MASK, 33) * _C1) & _MASK
        h2 ^= k2
    if tail:
        k1 = (_rotl((k1 * _C1) & _MASK, 31) * _C2) & _MASK
        h1 ^= k1
    h1 ^= length
    h2 ^= length
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    h1 = (h1 + h2) & _MASK
    h2 = (h2 + h1) & _MASK
    return _signed(h1), _signed(h2)


def token_python(key: bytes) -> int:
    """The Murmur3Partitioner token of a serialized partition key, without cassandra-driver."""
    if not key:
        return MIN_TOKEN
    tail = len(key) & 15
    if tail and max(key[-tail:]) >= 0x80:
        h1 = cassandra_murmur3_x64_128(key)[0]
    else:
        h1 = _hash64(key, 0, True, True)[0]
    return MAX_TOKEN if h1 == MIN_TOKEN else h1


def token_c(key: bytes) -> int:
    """The Murmur3Partitioner token of a serialized partition key, with cassandra-driver's C."""
    if not key:
        return MIN_TOKEN
    h1 = _cmurmur3(key)
    return MAX_TOKEN if h1 == MIN_TOKEN else h1


token = token_c if _cmurmur3 is not None else token_python
