"""Merkle trees for anti-entropy repair: pure, deterministic, no I/O.

A `MerkleTree` covers one token range (lo, hi] (Cassandra's semantics: lo None is the ring
minimum, lo >= hi wraps, lo == hi is the whole ring) and has 2**depth leaves that split the range
evenly by token. Each partition contributes `partition_hash(key, payload)` (xxh3-128 of
`u32 len(key) | key | payload`), XORed into the leaf whose range holds its token, so a tree
depends only on the set of partitions, never on the order they were added in. An inner node is
the XOR of its children, so the root is the XOR of every partition hash in the range (the same
at every depth; 16 zero bytes for an empty range). `difference(a, b)` lists the leaf ranges
whose hashes differ, adjacent ones coalesced: the ranges repair streams.

Invariants (`check_invariants`): 2**depth leaves, each an int in [0, 2**128); leaf ranges
partition (lo, hi] with no gap or overlap and none empty. Add each partition exactly once: XOR
makes a second add of the same partition cancel the first.

Leaf boundaries: with width = (hi - lo) mod 2**64 (2**64 for the whole ring, lo None read as
the minimum token), leaf i of n = 2**depth is (lo + floor(i * width / n), lo + floor((i + 1) *
width / n)], wrapped into the signed token space. A token t has offset (t - lo - 1) mod 2**64 in
[0, width), and its leaf is `((offset << depth) + n - 1) // width`: integer arithmetic, no loop.
For the full ring (None, MAX] (width 2**64 - 1) and for every power-of-two width these are
exactly Cassandra's recursive midpoint splits (the first one at -1); otherwise a boundary may
differ from Cassandra's by a token, and leaf widths differ by at most one token. A range narrower
than 2**depth tokens gets the largest depth it can hold with no empty leaf (`max_depth_for`).

The wire form (in `ValidationResponse.tree`) is documented in docs/format.md (Merkle trees).
"""
from __future__ import annotations

import itertools

import xxhash

from engine.token import MAX_TOKEN, MIN_TOKEN

HASH_BYTES = 16
MAX_DEPTH = 20              # Cassandra's cap: 2**20 leaves, 16 MiB of hashes
_RING = 1 << 64
_MASK = _RING - 1
_HALF = 1 << 63
_xxh3_128_digest = xxhash.xxh3_128_digest
_xxh3_128_int = xxhash.xxh3_128_intdigest


def partition_hash(key: bytes, payload: bytes) -> bytes:
    """16 bytes: xxh3-128 of (u32 big-endian len(key) | key | payload), big-endian digest."""
    return _xxh3_128_digest(len(key).to_bytes(4, "big") + key + payload)


def _check_token(name: str, value, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if type(value) is not int or not MIN_TOKEN <= value <= MAX_TOKEN:
        raise ValueError(f"{name} must be a token in [{MIN_TOKEN}, {MAX_TOKEN}]"
                         f"{' or None' if allow_none else ''}, got {value!r}")


def _base(lo: int | None) -> int:
    return MIN_TOKEN if lo is None else lo


def range_width(lo: int | None, hi: int) -> int:
    """How many ring positions (lo, hi] covers: in [1, 2**64]; lo == hi is the whole ring."""
    width = (hi - _base(lo)) & _MASK
    return width or _RING


def _signed(offset_from_min: int) -> int:
    return ((offset_from_min + _HALF) & _MASK) - _HALF


def _boundary(lo: int | None, width: int, i: int, parts: int):
    """The token after which piece i of `parts` starts: lo + floor(i * width / parts)."""
    if i == 0:
        return lo
    return _signed(_base(lo) + i * width // parts)


def split_range(lo: int | None, hi: int, parts: int) -> list[tuple[int | None, int]]:
    """(lo, hi] split evenly into `parts` consecutive non-empty (lo_i, hi_i] pieces."""
    _check_token("lo", lo, True)
    _check_token("hi", hi, False)
    width = range_width(lo, hi)
    if type(parts) is not int or not 1 <= parts <= width:
        raise ValueError(f"cannot split a range of {width} tokens into {parts!r} parts")
    bounds = [_boundary(lo, width, i, parts) for i in range(parts + 1)]
    bounds[-1] = hi
    return list(itertools.pairwise(bounds))


def contains(lo: int | None, hi: int, token: int) -> bool:
    """Whether token lies in (lo, hi] (wrapping allowed)."""
    return ((token - _base(lo) - 1) & _MASK) < range_width(lo, hi)


class MerkleTree:
    __slots__ = ("_leaves", "_round", "_start", "_width", "depth", "hi", "lo")

    def __init__(self, lo: int | None, hi: int, depth: int):
        _check_token("lo", lo, True)
        _check_token("hi", hi, False)
        if type(depth) is not int or not 0 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be an int in [0, {MAX_DEPTH}], got {depth!r}")
        self.lo = lo
        self.hi = hi
        self._width = range_width(lo, hi)
        self.depth = min(depth, self._width.bit_length() - 1)
        self._start = _base(lo) + 1          # the token at offset 0
        self._round = (1 << self.depth) - 1  # leaf = ((offset << depth) + _round) // width
        self._leaves = [0] * (1 << self.depth)

    @staticmethod
    def max_depth_for(lo: int | None, hi: int) -> int:
        """The deepest tree (lo, hi] can hold with no empty leaf, capped at MAX_DEPTH."""
        return min(MAX_DEPTH, range_width(lo, hi).bit_length() - 1)

    @classmethod
    def choose_depth(cls, partitions_estimate: int, max_depth: int = MAX_DEPTH,
                     max_bytes: int | None = None) -> int:
        """min(ceil(log2(partitions)), max_depth, MAX_DEPTH, the deepest tree whose leaves fit
        in max_bytes at 16 B a hash), never below 0 (one leaf)."""
        if partitions_estimate < 0 or max_depth < 0 or (max_bytes is not None and max_bytes < 0):
            raise ValueError(f"choose_depth needs non-negative arguments, got partitions_estimate="
                             f"{partitions_estimate}, max_depth={max_depth}, max_bytes={max_bytes}")
        depth = min((max(partitions_estimate, 1) - 1).bit_length(), max_depth, MAX_DEPTH)
        if max_bytes is not None:
            depth = min(depth, max((max_bytes // HASH_BYTES).bit_length() - 1, 0))
        return depth

    # -- building ------------------------------------------------------------------------------

    def leaf_index(self, token: int) -> int:
        offset = (token - self._start) & _MASK
        if offset >= self._width:
            raise ValueError(f"token {token} is outside the tree's range ({self.lo}, {self.hi}]")
        return ((offset << self.depth) + self._round) // self._width

    def add(self, token: int, key: bytes, payload: bytes) -> None:
        """XOR the partition's hash into the leaf that holds its token."""
        self._leaves[self.leaf_index(token)] ^= _xxh3_128_int(len(key).to_bytes(4, "big") + key + payload)

    def add_hash(self, token: int, h: bytes) -> None:
        if len(h) != HASH_BYTES:
            raise ValueError(f"a partition hash is {HASH_BYTES} bytes, got {len(h)}")
        self._leaves[self.leaf_index(token)] ^= int.from_bytes(h, "big")

    def add_many(self, partitions) -> int:
        """add() for an iterable of (token, key, payload), e.g. a validation scan; returns the count."""
        leaves, start, width, depth, digest = self._leaves, self._start, self._width, self.depth, _xxh3_128_int
        rnd = self._round
        n = 0
        for token, key, payload in partitions:
            offset = (token - start) & _MASK
            if offset >= width:
                raise ValueError(f"token {token} is outside the tree's range ({self.lo}, {self.hi}]")
            leaves[((offset << depth) + rnd) // width] ^= digest(len(key).to_bytes(4, "big") + key + payload)
            n += 1
        return n

    def add_hashes(self, pairs) -> int:
        """add_hash() for an iterable of (token, 16-byte hash); returns the count."""
        leaves, start, width, depth, from_bytes = self._leaves, self._start, self._width, self.depth, int.from_bytes
        rnd = self._round
        n = 0
        for token, h in pairs:
            offset = (token - start) & _MASK
            if offset >= width or len(h) != HASH_BYTES:
                self.add_hash(token, h)  # raises the precise error
            leaves[((offset << depth) + rnd) // width] ^= from_bytes(h, "big")
            n += 1
        return n

    # -- reading -------------------------------------------------------------------------------

    def leaf_range(self, i: int) -> tuple[int | None, int]:
        """The (lo, hi] of leaf i."""
        n = len(self._leaves)
        if not 0 <= i < n:
            raise IndexError(f"leaf {i} of a tree with {n} leaves")
        end = self.hi if i == n - 1 else _boundary(self.lo, self._width, i + 1, n)
        return _boundary(self.lo, self._width, i, n), end

    def leaf_ranges(self) -> list[tuple[int | None, int]]:
        return split_range(self.lo, self.hi, len(self._leaves))

    def root(self) -> bytes:
        """16 bytes: the XOR of every leaf (= of every partition hash added)."""
        acc = 0
        for leaf in self._leaves:
            acc ^= leaf
        return acc.to_bytes(HASH_BYTES, "big")

    def leaves(self) -> list[bytes]:
        return [leaf.to_bytes(HASH_BYTES, "big") for leaf in self._leaves]

    @property
    def memory_bytes(self) -> int:
        """The hashes' size, 16 B a leaf (what choose_depth's max_bytes budgets and the wire
        carries); CPython holds a non-zero leaf in about 56 B (pointer + int object)."""
        return HASH_BYTES * len(self._leaves)

    def same_shape(self, other: MerkleTree) -> bool:
        return (self._start, self._width, self.depth) == (other._start, other._width, other.depth)

    def __eq__(self, other) -> bool:
        if not isinstance(other, MerkleTree):
            return NotImplemented
        return self.same_shape(other) and self._leaves == other._leaves

    __hash__ = None

    def __repr__(self) -> str:
        return f"MerkleTree(({self.lo}, {self.hi}], depth={self.depth}, root={self.root().hex()})"

    def check_invariants(self) -> None:
        assert len(self._leaves) == 1 << self.depth
        assert 0 <= self.depth <= MAX_DEPTH and (1 << self.depth) <= self._width
        assert all(type(x) is int and 0 <= x < 1 << 128 for x in self._leaves)

    # -- wire ----------------------------------------------------------------------------------

    def to_wire(self) -> list:
        """[lo, hi, depth, leaves]: leaves is the 16-byte big-endian hashes in leaf order."""
        return [self.lo, self.hi, self.depth, b"".join([x.to_bytes(HASH_BYTES, "big") for x in self._leaves])]

    @classmethod
    def from_wire(cls, obj) -> MerkleTree:
        if not isinstance(obj, (list, tuple)) or len(obj) != 4:
            raise ValueError(f"a Merkle tree on the wire is [lo, hi, depth, leaves], got {_brief(obj)}")
        lo, hi, depth, blob = obj
        tree = cls(lo, hi, depth)
        if tree.depth != depth:
            raise ValueError(f"depth {depth} is too deep for the range ({lo}, {hi}] "
                             f"(at most {tree.depth}: every leaf must hold a token)")
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise ValueError(f"leaves must be bytes, got {type(blob).__name__}")  # noqa: TRY004 (one error type for bad wire input)
        blob = bytes(blob)
        expected = HASH_BYTES << depth
        if len(blob) != expected:
            raise ValueError(f"a depth-{depth} tree has {expected} bytes of leaves "
                             f"({1 << depth} x {HASH_BYTES}), got {len(blob)}")
        from_bytes = int.from_bytes
        tree._leaves = [from_bytes(blob[i:i + HASH_BYTES], "big") for i in range(0, expected, HASH_BYTES)]
        return tree


def _brief(obj) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def difference(a: MerkleTree, b: MerkleTree) -> list[tuple[int | None, int]]:
    """The (lo, hi] ranges of the leaves whose hashes differ, adjacent ones coalesced, in leaf order."""
    if not a.same_shape(b):
        raise ValueError(f"cannot compare trees of different shapes: ({a.lo}, {a.hi}] depth {a.depth} "
                         f"vs ({b.lo}, {b.hi}] depth {b.depth}")
    la, lb = a._leaves, b._leaves
    if la == lb:
        return []
    n, width, lo = len(la), a._width, a.lo
    out: list[tuple[int | None, int]] = []
    run_start = prev = None
    for i in [i for i, (x, y) in enumerate(zip(la, lb)) if x != y]:
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if run_start is not None:
            out.append((_boundary(lo, width, run_start, n), _boundary(lo, width, prev + 1, n)))
        run_start = prev = i
    end = a.hi if prev == n - 1 else _boundary(lo, width, prev + 1, n)
    out.append((_boundary(lo, width, run_start, n), end))
    return out
