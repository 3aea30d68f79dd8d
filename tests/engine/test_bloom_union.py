"""engine/bloom.py sparse_spec (the writer's sizing) and engine/bloom_union.py (one test for all
SSTables): fp_chance still met, no false negatives through the union, the fallbacks, and a
store's read view that follows its SSTables (new, old-sized and mixed filters)."""
from __future__ import annotations

import math
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bloom import BloomFilter, bits_for, bloom_spec, false_positive_chance, key_hash, sparse_spec
from engine.bloom_union import MAX_ADMIT, union_probe
from engine.store import Store

VECTORS = Path(__file__).resolve().parent / "vectors"


@pytest.mark.parametrize("fp", [0.5, 0.1, 0.05, 0.01, 0.001, 0.0001])
@pytest.mark.parametrize("n", [1, 2, 100, 1000, 4097, 100_000, 347_000, 1_000_000])
def test_sparse_spec_meets_fp_chance_with_fewer_probes_and_more_bits(n, fp):
    buckets, k_cassandra = bloom_spec(fp)
    m, k = sparse_spec(n, fp)
    assert m >= 64 and m & (m - 1) == 0
    assert 1.5 * n * buckets <= m <= 2 * (1.5 * n * buckets + 20) + 64
    assert 1 <= k <= k_cassandra
    assert false_positive_chance(m / n, k) <= max(fp, false_positive_chance(n * buckets / n, k_cassandra))
    assert k == 1 or false_positive_chance(m / n, k - 1) > fp  # the fewest probes that do
    assert m >= bits_for(n, buckets)


def test_sparse_filter_measured_fp_rate_is_at_most_the_target():
    n = 100_000
    bf = BloomFilter.create_sparse(n, 0.01, blocked=False)
    assert (bf.m, bf.k) == (2 ** 21, 2)
    bf.add_many(b"user%012d" % i for i in range(n))
    false = sum(bf.might_contain(b"user%011da" % i) for i in range(n))
    assert false / n < 0.01
    assert BloomFilter.create_sparse(n, 1.0).m == 0


def filled(n: int, fp: float, seed: int, sparse: bool = True) -> tuple[BloomFilter, list[bytes]]:
    rnd = random.Random(seed)
    keys = [rnd.randbytes(12) for _ in range(n)]
    bf = BloomFilter.create_sparse(n, fp, blocked=False) if sparse else BloomFilter.create(n, fp)
    bf.add_many(keys)
    return bf, keys


def union_admits(union, key: bytes) -> bool:
    mask, rest, bits = union
    h1, h2 = key_hash(key)
    idx, step = h2 & mask, h1 & mask
    for _ in range(len(rest) + 1):
        if not bits[idx >> 3] & (1 << (idx & 7)):
            return False
        idx = (idx + step) & mask
    return True


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3000), st.sampled_from([0.001, 0.01, 0.1, 0.3])),
                min_size=2, max_size=5), st.integers(0, 2 ** 32))
def test_the_union_rejects_only_keys_that_every_filter_rejects(specs, seed):
    filters, stored = [], []
    for i, (n, fp) in enumerate(specs):
        bf, keys = filled(n, fp, seed + i)
        filters.append(bf)
        stored += keys
    union = union_probe(filters)
    if union is None:  # too full to pay: the fallback, checked below
        return
    assert union[0] + 1 == max(f.m for f in filters) and len(union[1]) + 1 == min(f.k for f in filters)
    assert all(union_admits(union, k) for k in stored)
    rnd = random.Random(seed - 1)
    for probe in (rnd.randbytes(12) for _ in range(3000)):
        if not union_admits(union, probe):
            assert not any(f.might_contain(probe) for f in filters)


def test_the_union_of_sparse_filters_rejects_most_misses():
    filters = [filled(n, 0.01, i)[0] for i, n in enumerate((3000, 3000, 2600))]
    union = union_probe(filters)
    rnd = random.Random(99)  # not a seed of the stored keys
    admitted = sum(union_admits(union, rnd.randbytes(12)) for _ in range(20_000)) / 20_000
    assert admitted < 0.08  # fill ~23% (2 * 8,600 probes over 65,536 bits), K = 2: ~5%


def test_no_union_for_one_filter_always_present_old_sized_or_too_full():
    a, _ = filled(1000, 0.01, 1)
    b, _ = filled(1000, 0.01, 2)
    assert union_probe([a, b]) is not None
    assert union_probe([a]) is None
    assert union_probe([a, BloomFilter.create_sparse(10, 1.0)]) is None
    assert union_probe([a, BloomFilter.create_sparse(1000, 0.01)]) is None  # blocked: bloom_blocked.py
    old, _ = filled(1000, 0.01, 3, sparse=False)  # Cassandra's size: 10,048 bits, not a power of two
    assert old.m == 10048 and union_probe([a, old]) is None
    crowded, _ = filled(1000, 0.01, 4)
    rnd = random.Random(5)
    crowded.add_many(rnd.randbytes(12) for _ in range(20_000))  # 21x its expected keys
    fill = sum(bin(x).count("1") for x in crowded.bits) / crowded.m
    assert fill ** crowded.k > MAX_ADMIT and union_probe([a, crowded]) is None
    assert math.isclose(MAX_ADMIT, 0.25)


def three_sstables(path) -> Store:
    s = Store.open(str(path), background=False)
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "blob", "v": "blob"}, primary_key="k")
    for gen in range(3):
        for i in range(gen * 300, gen * 300 + 400):
            s.insert("ks", "t", {"k": b"key%05d" % i, "v": b"v%d-%d" % (gen, i)})
        s.flush()
    return s


def test_the_read_view_union_follows_flush_compaction_and_truncate(tmp_path):
    with three_sstables(tmp_path) as s:
        cfs = next(iter(s.cfs.values()))
        assert cfs._read_union is None and cfs._read_blocked[2][3] == 3  # blocked (version 2) filters
        assert all(s.get("ks", "t", {"k": b"key%05d" % i}) is not None for i in range(1000))
        assert all(s.get("ks", "t", {"k": b"nokey%05d" % i}) is None for i in range(2000))
        s.compact("ks", "t")
        assert len(cfs.sstables) == 1 and cfs._read_blocked[2][3] == 1
        s.insert("ks", "t", {"k": b"late", "v": b"1"})
        s.flush()
        assert cfs._read_blocked[2][3] == 2
        assert s.get("ks", "t", {"k": b"late"}) == {"k": b"late", "v": b"1"}
        assert s.get("ks", "t", {"k": b"key00350"})["v"] == b"v1-350"
        s.truncate("ks", "t", auto_snapshot=False)
        assert cfs._read_blocked is None and s.get("ks", "t", {"k": b"late"}) is None
        s.check_invariants()


def test_old_sized_filters_are_read_without_a_union_until_compaction(tmp_path):
    """tests/engine/vectors/store_v1 was written with Cassandra-sized filters (m = 3072, 512)."""
    shutil.copytree(VECTORS / "store_v1", tmp_path / "store")
    with Store.open(str(tmp_path / "store"), background=False) as s:
        t = s.table("ks", "kv")
        cfs = s.cfs[t.id]
        before = {i: s.get("ks", "kv", {"k": b"key%04d" % i}) for i in range(0, 320)}
        assert len(cfs.sstables) >= 2 and cfs._read_union is None
        assert any(sst.bloom.m & (sst.bloom.m - 1) for sst in cfs.sstables)
        s.insert("ks", "kv", {"k": b"new", "v": b"n"})
        s.flush()
        assert cfs._read_union is None and cfs._read_blocked is None  # a mix: each file its own test
        s.compact("ks", "kv")
        s.insert("ks", "kv", {"k": b"new2", "v": b"n"})
        s.flush()
        assert len(cfs.sstables) == 2 and cfs._read_blocked[2][3] == 2
        assert {i: s.get("ks", "kv", {"k": b"key%04d" % i}) for i in range(0, 320)} == before
        assert s.get("ks", "kv", {"k": b"new2"})["v"] == b"n"
