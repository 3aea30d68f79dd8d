"""ring/merkle.py: order independence, single-partition differences, leaf ranges, depth, wire."""
from __future__ import annotations

import itertools
import random

import pytest
import xxhash
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.token import MAX_TOKEN, MIN_TOKEN
from ring.merkle import (
    HASH_BYTES,
    MAX_DEPTH,
    MerkleTree,
    contains,
    difference,
    partition_hash,
    range_width,
    split_range,
)

KEY_TOKENS = st.integers(MIN_TOKEN + 1, MAX_TOKEN)
ANY_TOKENS = st.integers(MIN_TOKEN, MAX_TOKEN)
FULL = (None, MAX_TOKEN)


@st.composite
def ranges(draw):
    """Token ranges of every kind: ordinary, wrapping, the whole ring, lo None, and tiny ones."""
    kind = draw(st.sampled_from(["plain", "wrap", "full", "none", "narrow", "same"]))
    if kind == "full":
        return FULL
    if kind == "none":
        return None, draw(ANY_TOKENS)
    if kind == "same":                       # lo == hi: the whole ring starting at lo
        t = draw(ANY_TOKENS)
        return t, t
    a, b = draw(ANY_TOKENS), draw(ANY_TOKENS)
    if kind == "narrow":
        a = draw(st.integers(MIN_TOKEN, MAX_TOKEN - 300))
        b = a + draw(st.integers(1, 300))
    if a == b:
        return a, b
    lo, hi = (min(a, b), max(a, b)) if kind in ("plain", "narrow") else (max(a, b), min(a, b))
    return lo, hi


@st.composite
def tree_data(draw, min_size=0):
    """(lo, hi, depth, partitions) with every partition's token inside (lo, hi] and unique keys."""
    lo, hi = draw(ranges())
    depth = draw(st.integers(0, 8))
    width = range_width(lo, hi)
    start = (MIN_TOKEN if lo is None else lo) + 1
    n = draw(st.integers(min_size, 40))
    parts = {}
    for i in range(n):
        off = draw(st.integers(0, width - 1))
        token = ((start + off - MIN_TOKEN) % 2**64) + MIN_TOKEN
        if token == MIN_TOKEN:                 # never a key token
            continue
        parts[i.to_bytes(4, "big") + draw(st.binary(max_size=4))] = (token, draw(st.binary(max_size=16)))
    return lo, hi, depth, [(t, k, p) for k, (t, p) in parts.items()]


def build(lo, hi, depth, parts):
    tree = MerkleTree(lo, hi, depth)
    for token, key, payload in parts:
        tree.add(token, key, payload)
    tree.check_invariants()
    return tree


# -- hashing -------------------------------------------------------------------------------------

def test_partition_hash_is_xxh3_128_of_length_prefixed_key_and_payload():
    h = partition_hash(b"k1", b"payload")
    assert h == xxhash.xxh3_128_digest(b"\x00\x00\x00\x02k1payload")
    assert len(h) == HASH_BYTES
    # the length prefix keeps key/payload boundaries apart
    assert partition_hash(b"ab", b"c") != partition_hash(b"a", b"bc")


def test_add_and_add_hash_and_bulk_agree():
    parts = [(random.Random(i).randint(MIN_TOKEN + 1, MAX_TOKEN), b"k%d" % i, b"v" * i) for i in range(200)]
    a = build(None, MAX_TOKEN, 5, parts)
    b = MerkleTree(None, MAX_TOKEN, 5)
    for t, k, p in parts:
        b.add_hash(t, partition_hash(k, p))
    c = MerkleTree(None, MAX_TOKEN, 5)
    assert c.add_many(iter(parts)) == 200
    d = MerkleTree(None, MAX_TOKEN, 5)
    assert d.add_hashes((t, partition_hash(k, p)) for t, k, p in parts) == 200
    assert a == b == c == d
    acc = 0
    for t, k, p in parts:
        acc ^= int.from_bytes(partition_hash(k, p), "big")
    assert a.root() == acc.to_bytes(16, "big")


# -- order independence --------------------------------------------------------------------------

@given(tree_data(), st.randoms(use_true_random=False))
def test_equal_data_gives_equal_trees_whatever_the_order(data, rnd):
    lo, hi, depth, parts = data
    a = build(lo, hi, depth, parts)
    shuffled = list(parts)
    rnd.shuffle(shuffled)
    b = build(lo, hi, depth, shuffled)
    assert a == b and a.root() == b.root() and a.leaves() == b.leaves()
    assert difference(a, b) == []
    # the root is the XOR of every partition hash, whatever the depth
    assert build(lo, hi, 0, shuffled).root() == a.root()


# -- a difference in one partition ---------------------------------------------------------------

@given(tree_data(min_size=1), st.data())
def test_one_partition_difference_shows_in_exactly_its_leaf(data, more):
    lo, hi, depth, parts = data
    assume(parts)                                # the ring minimum may have been skipped
    victim = more.draw(st.integers(0, len(parts) - 1))
    token, key, payload = parts[victim]
    others = parts[:victim] + parts[victim + 1:]
    change = more.draw(st.sampled_from(["payload", "missing", "extra"]))
    if change == "payload":
        changed = others + [(token, key, payload + b"!")]
    elif change == "missing":
        changed = others
    else:
        extra_key = b"\xff" + key                # unique: generated keys start with 4 index bytes
        changed = parts + [(token, extra_key, payload)]
    a = build(lo, hi, depth, parts)
    b = build(lo, hi, depth, list(reversed(changed)))
    i = a.leaf_index(token)
    differing = [j for j, (x, y) in enumerate(zip(a.leaves(), b.leaves())) if x != y]
    assert differing == [i]
    assert a.root() != b.root()
    assert difference(a, b) == [a.leaf_range(i)] == difference(b, a)
    leaf_lo, leaf_hi = a.leaf_range(i)
    assert contains(leaf_lo, leaf_hi, token)


def test_difference_coalesces_adjacent_leaves_and_keeps_order():
    a = MerkleTree(None, MAX_TOKEN, 3)
    b = MerkleTree(None, MAX_TOKEN, 3)
    ranges8 = a.leaf_ranges()
    for i in (1, 2, 3, 5, 7):
        b.add(ranges8[i][1], b"k", b"v")       # a token on the leaf's upper bound
    assert difference(a, b) == [(ranges8[1][0], ranges8[3][1]), ranges8[5], ranges8[7]]
    assert difference(a, b)[-1][1] == MAX_TOKEN
    c = MerkleTree(None, MAX_TOKEN, 3)
    for lo_, hi_ in ranges8:
        c.add(hi_, b"k", b"v")
    assert difference(a, c) == [FULL]


def test_difference_requires_equal_shapes():
    with pytest.raises(ValueError, match="different shapes"):
        difference(MerkleTree(None, 0, 3), MerkleTree(None, 0, 4))
    with pytest.raises(ValueError, match="different shapes"):
        difference(MerkleTree(None, 0, 3), MerkleTree(None, 1, 3))
    # lo None and lo MIN_TOKEN name the same range
    assert difference(MerkleTree(None, 0, 3), MerkleTree(MIN_TOKEN, 0, 3)) == []


# -- leaf ranges ---------------------------------------------------------------------------------

@given(ranges(), st.integers(0, 10), st.lists(KEY_TOKENS, max_size=20))
def test_leaf_ranges_partition_the_range(rng, depth, tokens):
    lo, hi = rng
    tree = MerkleTree(lo, hi, depth)
    width = range_width(lo, hi)
    assert (1 << tree.depth) <= width and (tree.depth == depth or tree.depth == width.bit_length() - 1)
    leaf_ranges = [tree.leaf_range(i) for i in range(1 << tree.depth)]
    assert leaf_ranges == tree.leaf_ranges() == split_range(lo, hi, 1 << tree.depth)
    assert leaf_ranges[0][0] == lo and leaf_ranges[-1][1] == hi
    for (_, prev_hi), (next_lo, _) in itertools.pairwise(leaf_ranges):
        assert prev_hi == next_lo                                  # no gap, no overlap
    widths = [range_width(a, b) for a, b in leaf_ranges]
    assert sum(widths) == width                                    # nothing covered twice
    assert max(widths) - min(widths) <= 1                          # evenly split
    if len(leaf_ranges) > 1:
        assert all(w < width for w in widths)                      # no leaf is (x, x] = the ring
    edges = leaf_ranges[:4] + leaf_ranges[len(leaf_ranges) // 2:][:4] + leaf_ranges[-4:]
    for token in tokens + [hi] + [b for _, b in edges] + [b + 1 for _, b in edges if b < MAX_TOKEN]:
        if not contains(lo, hi, token):
            with pytest.raises(ValueError, match="outside"):
                tree.leaf_index(token)
            continue
        i = tree.leaf_index(token)
        assert [j for j, (a, b) in enumerate(leaf_ranges) if contains(a, b, token)] == [i]


def cassandra_midpoint(left: int, right: int) -> int:
    """Murmur3Partitioner.midpoint, as Cassandra writes it (BigInteger arithmetic)."""
    if left < right:
        return (left + right) >> 1
    mid = (MAX_TOKEN - MIN_TOKEN + left + right) >> 1
    return MIN_TOKEN + (mid - MAX_TOKEN) if mid > MAX_TOKEN else mid


def cassandra_leaves(lo, hi, depth):
    bounds = [MIN_TOKEN if lo is None else lo, hi]
    for _ in range(depth):
        bounds = [x for a, b in itertools.pairwise(bounds) for x in (a, cassandra_midpoint(a, b))] + [hi]
    return list(itertools.pairwise(bounds))


@given(st.integers(0, 8), st.integers(MIN_TOKEN, MAX_TOKEN - 2**40), st.integers(8, 40))
def test_leaves_are_cassandras_midpoint_splits(depth, lo, log_width):
    full = cassandra_leaves(None, MAX_TOKEN, depth)
    full[0] = (None, full[0][1])
    assert MerkleTree(None, MAX_TOKEN, depth).leaf_ranges() == full
    hi = lo + 2**log_width                       # any power-of-two width, non-wrapping
    assert MerkleTree(lo, hi, depth).leaf_ranges() == cassandra_leaves(lo, hi, depth)


def test_full_ring_and_wrapping_ranges():
    full = MerkleTree(None, MAX_TOKEN, 1)
    assert full.leaf_range(0) == (None, -1) and full.leaf_range(1) == (-1, MAX_TOKEN)  # Cassandra's midpoint
    assert full.leaf_index(MIN_TOKEN + 1) == full.leaf_index(-1) == 0
    assert full.leaf_index(0) == full.leaf_index(MAX_TOKEN) == 1
    with pytest.raises(ValueError):
        full.leaf_index(MIN_TOKEN)               # the ring minimum is no key's token
    wrap = MerkleTree(100, -100, 1)              # (100, MAX] + [MIN, -100]
    assert range_width(100, -100) == 2**64 - 200
    assert wrap.leaf_index(101) == 0 and wrap.leaf_index(MAX_TOKEN) == 0
    assert wrap.leaf_index(MIN_TOKEN + 1) == 1 and wrap.leaf_index(-100) == 1
    for t in (0, 100, -99):
        with pytest.raises(ValueError, match="outside"):
            wrap.leaf_index(t)
    ring_from_5 = MerkleTree(5, 5, 2)            # lo == hi: the whole ring
    assert range_width(5, 5) == 2**64
    assert ring_from_5.leaf_range(0) == (5, 5 + 2**62) and ring_from_5.leaf_range(3)[1] == 5
    assert ring_from_5.leaf_index(5) == 3 and ring_from_5.leaf_index(6) == 0


def test_depth_zero_is_one_leaf():
    tree = MerkleTree(-10, 10, 0)
    assert tree.leaves() == [bytes(16)] and tree.root() == bytes(16)
    assert tree.leaf_range(0) == (-10, 10) and tree.memory_bytes == 16
    tree.add(10, b"k", b"v")
    tree.add(-9, b"j", b"w")
    assert tree.leaf_index(10) == tree.leaf_index(-9) == 0
    assert tree.leaves() == [tree.root()]
    other = MerkleTree(-10, 10, 0)
    assert difference(tree, other) == [(-10, 10)]


def test_narrow_range_caps_depth_so_no_leaf_is_empty():
    tree = MerkleTree(0, 100, 10)
    assert tree.depth == 6 == MerkleTree.max_depth_for(0, 100)
    assert len(tree.leaves()) == 64
    assert MerkleTree(0, 1, 20).depth == 0
    assert MerkleTree.max_depth_for(None, MAX_TOKEN) == MAX_DEPTH


def test_bad_construction_is_rejected():
    for lo, hi, depth in [(0, 1, -1), (0, 1, MAX_DEPTH + 1), (0, 1, 2.0), (MIN_TOKEN - 1, 0, 1),
                          (0, MAX_TOKEN + 1, 1), (0, None, 1), ("0", 1, 1), (True, 5, 1)]:
        with pytest.raises(ValueError):
            MerkleTree(lo, hi, depth)
    tree = MerkleTree(None, MAX_TOKEN, 2)
    with pytest.raises(ValueError, match="16 bytes"):
        tree.add_hash(0, b"short")
    with pytest.raises(ValueError, match="16 bytes"):
        tree.add_hashes([(0, b"short")])
    with pytest.raises(IndexError):
        tree.leaf_range(4)
    with pytest.raises(ValueError):
        split_range(0, 3, 4)


# -- choose_depth --------------------------------------------------------------------------------

@given(st.integers(0, 2**40), st.integers(0, 30), st.one_of(st.none(), st.integers(0, 2**40)))
def test_choose_depth_follows_its_rules(partitions, max_depth, max_bytes):
    depth = MerkleTree.choose_depth(partitions, max_depth=max_depth, max_bytes=max_bytes)
    assert 0 <= depth <= min(max_depth, MAX_DEPTH)
    need = 0
    while (1 << need) < partitions:
        need += 1                                        # ceil(log2(partitions))
    if max_bytes is not None and max_bytes >= 16:
        assert 16 << depth <= max_bytes
        fits = (max_bytes // 16).bit_length() - 1        # the deepest tree that fits
    else:
        fits = MAX_DEPTH if max_bytes is None else 0
    assert depth == min(need, max_depth, MAX_DEPTH, fits)


def test_choose_depth_examples():
    assert MerkleTree.choose_depth(0) == 0 and MerkleTree.choose_depth(1) == 0
    assert MerkleTree.choose_depth(2) == 1 and MerkleTree.choose_depth(1000) == 10
    assert MerkleTree.choose_depth(1024) == 10 and MerkleTree.choose_depth(1025) == 11
    assert MerkleTree.choose_depth(10**9) == 20
    assert MerkleTree.choose_depth(10**9, max_bytes=8 * 2**20) == 19   # fits a 16 MiB frame
    assert MerkleTree.choose_depth(10**9, max_bytes=15) == 0
    with pytest.raises(ValueError):
        MerkleTree.choose_depth(-1)


# -- wire ----------------------------------------------------------------------------------------

@given(tree_data())
def test_wire_round_trip(data):
    lo, hi, depth, parts = data
    tree = build(lo, hi, depth, parts)
    wire = tree.to_wire()
    assert wire[:3] == [lo, hi, tree.depth] and wire[3] == b"".join(tree.leaves())
    back = MerkleTree.from_wire(wire)
    back.check_invariants()
    assert back == tree and back.leaves() == tree.leaves() and back.root() == tree.root()
    assert MerkleTree.from_wire(tuple(wire[:3]) + (bytearray(wire[3]),)) == tree


def test_wire_through_msgpack():
    msgpack = pytest.importorskip("msgpack")
    tree = build(None, MAX_TOKEN, 4, [(7, b"a", b"b"), (-7, b"c", b"d")])
    assert MerkleTree.from_wire(msgpack.unpackb(msgpack.packb(tree.to_wire()))) == tree


@pytest.mark.parametrize("obj, message", [
    (None, r"\[lo, hi, depth, leaves\]"),
    ([None, 0, 1], r"\[lo, hi, depth, leaves\]"),
    ({"lo": None}, r"\[lo, hi, depth, leaves\]"),
    ([None, 0, 1, bytes(31)], "32 bytes of leaves"),
    ([None, 0, 1, bytes(33)], "32 bytes of leaves"),
    ([None, 0, 0, "0" * 16], "leaves must be bytes"),
    ([None, 0, -1, b""], "depth"),
    ([None, 0, 21, b""], "depth"),
    ([None, 0, "2", bytes(64)], "depth"),
    ([None, 2**63, 0, bytes(16)], "hi must be a token"),
    ([1.5, 0, 0, bytes(16)], "lo must be a token"),
    ([0, 4, 3, bytes(128)], "too deep"),
])
def test_from_wire_rejects_bad_input(obj, message):
    with pytest.raises(ValueError, match=message):
        MerkleTree.from_wire(obj)


def test_worked_example_in_docs():
    msgpack = pytest.importorskip("msgpack")
    from engine.token import token
    tree = MerkleTree(None, MAX_TOKEN, 1)
    assert token(b"k") == 5303797501861836210 and token(b"a") == -8839064797231613815
    tree.add(token(b"k"), b"k", b"v")
    tree.add(token(b"a"), b"a", b"b")
    assert tree.leaves() == [bytes.fromhex("27c8a65bd745d980fd65c5aaa15bfe63"),
                             bytes.fromhex("f7c9e69b13878ac426341f91a13e4970")]
    assert tree.root().hex() == "d00140c0c4c25344db51da3b0065b713"
    assert msgpack.packb(tree.to_wire()).hex() == (
        "94c0cf7fffffffffffffff01c420"
        "27c8a65bd745d980fd65c5aaa15bfe63f7c9e69b13878ac426341f91a13e4970")
