"""engine/bloom_blocked.py (Filter.db version 2, every probe in one 64-bit word): the sizing meets
bloom_filter_fp_chance, no false negatives, the file round trip and its checks, the read view's
union and rows, and version-1 files written by session 10's code read, mixed and compacted."""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bloom import VERSION_BLOCKED, BloomFilter, bloom_spec, key_hash, sparse_spec
from engine.bloom_blocked import (MAX_K, blocked_fp, blocked_k, interleaved, key_mask, mask_tables,
                                  word_index)
from engine.bloom_union import point_read_views
from engine.encoding import U16
from engine.errors import CorruptionError
from engine.sstable_reader import SSTableReader
from engine.sstable_writer import SSTableWriter
from engine.store import Store
from engine.token import token

STORE_FILTER_V1 = Path(__file__).resolve().parent / "data" / "store_filter_v1"


def word_test(bf: BloomFilter, key: bytes) -> bool:
    """The read view's test of one blocked filter: the key's word against its mask."""
    mm, words = bf.block_view()
    h1, h2 = key_hash(key)
    mask = key_mask(h1, h2, bf.k)
    return words[(h2 & mm) >> 6] & mask == mask


@pytest.mark.parametrize("fp", [0.5, 0.3, 0.1, 0.05, 0.01, 0.005, 0.001])
@pytest.mark.parametrize("n", [1, 100, 4097, 347_000, 1_000_000])
def test_blocked_filters_meet_fp_chance_with_one_k_per_fp_chance(n, fp):
    buckets = bloom_spec(fp)[0]
    bf = BloomFilter.create_sparse(n, fp)
    k = blocked_k(fp, buckets * 1.5)
    assert bf.blocked == (k is not None) and bf.m == sparse_spec(n, fp)[0]
    if k is None:  # below what K <= MAX_K reaches: the standard layout
        assert (fp < 0.004 or 0.393 <= fp < 0.6) and bf.k == sparse_spec(n, fp)[1]
        return
    assert bf.k == k and 2 <= k <= MAX_K
    assert blocked_fp(bf.m / n, k) <= blocked_fp(buckets * 1.5, k) <= fp
    assert k == 2 or blocked_fp(buckets * 1.5, k - 1) > fp  # the fewest probes that do


def test_measured_fp_rate_of_a_blocked_filter_matches_its_formula():
    n = 100_000
    bf = BloomFilter.create_sparse(n, 0.01)
    assert (bf.m, bf.k, bf.blocked) == (2 ** 21, 3, True)
    bf.add_many(b"user%012d" % i for i in range(n))
    false = sum(bf.might_contain(b"user%011da" % i) for i in range(200_000)) / 200_000
    expected = blocked_fp(bf.m / n, bf.k)  # 0.45% at 21 bits a key
    assert 0.8 * expected < false < 1.2 * expected < 0.01


@settings(max_examples=40, deadline=None)
@given(st.sets(st.binary(max_size=40), max_size=400), st.sampled_from([0.3, 0.1, 0.01, 0.005]))
def test_no_false_negatives_and_every_setter_sets_the_same_bits(keys, fp):
    one, many, deferred = (BloomFilter.create_sparse(max(1, len(keys)), fp) for _ in range(3))
    assert one.blocked
    for key in keys:
        one.add(key)
    many.add_many(keys)
    add = deferred.deferred_add()
    for key in keys:
        add(key)
    again = BloomFilter.decode(deferred.encode(), "Filter.db")
    assert one.bits == many.bits == again.bits and again.blocked and again.k == one.k
    assert all(one.might_contain(k) and word_test(one, k) for k in keys)
    rnd = random.Random(len(keys))
    for probe in (rnd.randbytes(12) for _ in range(300)):
        assert one.might_contain(probe) == word_test(one, probe)


def test_the_mask_tables_give_key_mask():
    rnd = random.Random(3)
    edges = [-1, 0, 2 ** 63 - 1, -2 ** 63]
    for k in range(2, MAX_K + 1):
        lo, hi = mask_tables(k)
        for h1 in [rnd.randrange(-2 ** 63, 2 ** 63) for _ in range(2000)] + edges:
            h2 = rnd.choice([rnd.randrange(-2 ** 63, 2 ** 63)] + edges)
            mask = key_mask(h1, h2, k)
            assert 1 << (h2 & 63) | lo[h1 & 4095] | hi[h1 >> 12 & 4095] == mask and 1 <= mask.bit_count() <= k
            assert mask >> (h2 & 63) & 1 and all(mask >> (h1 >> 6 * i & 63) & 1 for i in range(k - 1))


def test_the_first_probe_is_the_standard_first_probe_and_the_word_holds_every_probe():
    bf = BloomFilter.create_sparse(5000, 0.01)
    assert bf.blocked and bf.k == 3
    rnd = random.Random(4)
    for key in (rnd.randbytes(10) for _ in range(500)):
        one = BloomFilter(bf.m, bf.k, bytearray(bf.m // 8), blocked=True)
        one.add(key)
        h1, h2 = key_hash(key)
        first = h2 % bf.m  # version 1's first probe (probe_view)
        assert one.bits[first >> 3] & (1 << (first & 7))
        w = word_index(h2, bf.m)
        assert w == first >> 6 and 1 <= sum(map(int.bit_count, one.bits)) == key_mask(h1, h2, 3).bit_count()
        assert int.from_bytes(one.bits[8 * w:8 * w + 8], "little") == key_mask(h1, h2, 3)


def test_version_2_file_round_trip_and_checks():
    bf = BloomFilter.create_sparse(1000, 0.01)
    bf.add_many(b"k%d" % i for i in range(1000))
    buf = bf.encode()
    assert buf[:4] == b"DTSF" and U16.unpack_from(buf, 4)[0] == VERSION_BLOCKED == 2
    back = BloomFilter.decode(buf, "f")
    assert (back.m, back.k, back.blocked, back.bits) == (bf.m, bf.k, True, bf.bits)
    flipped = bytearray(buf)
    flipped[40] ^= 1
    with pytest.raises(CorruptionError, match="checksum"):
        BloomFilter.decode(bytes(flipped), "f")
    std = BloomFilter.create_sparse(1000, 0.01, blocked=False)
    assert U16.unpack_from(std.encode(), 4)[0] == 1 and not BloomFilter.decode(std.encode(), "f").blocked
    odd = BloomFilter.create(1000, 0.01)  # m = 10,048: not a power of two, so no version 2
    odd.blocked = True
    with pytest.raises(CorruptionError, match="blocked filter parameters"):
        BloomFilter.decode(odd.encode(), "f")


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=5), st.integers(0, 2 ** 32))
def test_the_union_and_rows_answer_as_the_filters(sizes, seed):
    rnd = random.Random(seed)
    filters, stored = [], []
    for n in sizes:
        bf = BloomFilter.create_sparse(n, 0.01)
        keys = [rnd.randbytes(12) for _ in range(n)]
        bf.add_many(keys)
        filters.append(bf)
        stored += keys
    wm, ubits, union, stride, words = interleaved(filters)
    top = max(f.m for f in filters)
    assert stride == len(filters) and wm + 1 == max(f.m for f in filters) // 64
    assert bytes(ubits) == b"".join(w.to_bytes(8, "little") for w in union)
    for key in stored + [rnd.randbytes(12) for _ in range(2000)]:
        h1, h2 = key_hash(key)
        mask, w = key_mask(h1, h2, 3), word_index(h2, top)
        row = [words[w * stride + i] & mask == mask for i in range(stride)]
        assert row == [f.might_contain(key) for f in filters]
        assert union[w] & mask == mask or not any(row)  # the union rejects only what all reject


def write_sstable(directory, generation: int, fp: float, keys) -> SSTableReader:
    w = SSTableWriter(str(directory), generation, expected_partitions=len(keys), bloom_fp_chance=fp)
    for t, k in sorted((token(k), k) for k in keys):
        w.append(t, k, b"payload-" + k)
    return w.finish({"min_timestamp": 1, "max_timestamp": 2, "cell_count": len(keys), "tombstone_count": 0,
                     "max_local_deletion_time": 2**63 - 1, "droppable_histogram": [], "created_ms": 1})


def test_filters_of_different_k_are_each_tested_on_their_own(tmp_path):
    a = write_sstable(tmp_path, 1, 0.01, [b"a%d" % i for i in range(300)])   # K = 3
    b = write_sstable(tmp_path, 2, 0.005, [b"b%d" % i for i in range(300)])  # K = 4
    assert (a.bloom.k, b.bloom.k, a.bloom.blocked, b.bloom.blocked) == (3, 4, True, True)
    view, union, blocked = point_read_views([b, a])
    assert blocked is None and union is None
    for key in [b"a%d" % i for i in range(300)] + [b"b%d" % i for i in range(300)] + [b"c1", b"c2"]:
        found = [search(token(key), key) for m, rest, bits, search in view]  # the view admits all
        assert found == [b.get(token(key), key), a.get(token(key), key)]
    a.close(), b.close()


def test_version_1_files_of_session_10_read_mix_and_compact(tmp_path):
    """tests/engine/data/store_filter_v1: three SSTables written by main at bda2f60 (make_store_filter_v1.py)."""
    shutil.copytree(STORE_FILTER_V1, tmp_path / "store")
    expected = {b"key%05d" % i: b"v%d-%d" % (min(2, i // 300), i) for i in range(1000)}
    with Store.open(str(tmp_path / "store"), background=False) as s:
        cfs = s.cfs[s.table("ks", "t").id]
        assert [sst.bloom.blocked for sst in cfs.sstables] == [False] * 3
        assert cfs._read_blocked is None and cfs._read_union is not None  # session 10's union
        assert {k: s.get("ks", "t", {"k": k})["v"] for k in expected} == expected
        s.insert("ks", "t", {"k": b"new", "v": b"n"})
        s.insert("ks", "t", {"k": b"key00001", "v": b"newer"})
        s.flush()
        assert cfs.sstables[0].bloom.blocked and cfs._read_blocked is None and cfs._read_union is None
        expected.update({b"new": b"n", b"key00001": b"newer"})
        assert {k: s.get("ks", "t", {"k": k})["v"] for k in expected} == expected
        assert all(s.get("ks", "t", {"k": b"nokey%05d" % i}) is None for i in range(500))
        s.compact("ks", "t")
        assert [sst.bloom.blocked for sst in cfs.sstables] == [True] and cfs._read_blocked is not None
        with open(cfs.sstables[0].paths[2], "rb") as f:
            assert U16.unpack_from(f.read(6), 4)[0] == 2
        assert {k: s.get("ks", "t", {"k": k})["v"] for k in expected} == expected
        s.check_invariants()
