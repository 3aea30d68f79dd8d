"""The lean point read (ColumnFamilyStore.read_payloads over its read view, Store.get's blob-key
path): the same answers as every SSTable's own get, bloom bits tested exactly as
BloomFilter.might_contain_hash tests them, a view that follows every change of the SSTable list,
and the same errors as the general path for keys it does not take."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bloom import BloomFilter, key_hash
from engine.errors import InvalidRequest
from engine.store import Store
from engine.token import token as token_of


def inline_probe(view, h) -> bool:
    """The test read_payloads runs on one view entry, as written there."""
    m, rest, bits = view
    h1, h2 = h
    idx = h2 % m
    if not bits[idx >> 3] & (1 << (idx & 7)):
        return False
    step = h1 % m
    for _ in rest:
        idx += step
        if idx >= m:
            idx -= m
        if not bits[idx >> 3] & (1 << (idx & 7)):
            return False
    return True


@settings(max_examples=60)
@given(st.lists(st.binary(min_size=1, max_size=12), max_size=40, unique=True),
       st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=40),
       st.sampled_from([0.001, 0.01, 0.1, 0.5, 1.0]))
def test_probe_view_answers_as_might_contain_hash(added, probed, fp):
    bf = BloomFilter.create(len(added), fp)
    bf.add_many(added)
    view = bf.probe_view()
    for key in added + probed:
        assert inline_probe(view, key_hash(key)) == bf.might_contain_hash(key_hash(key))
    assert all(inline_probe(view, key_hash(k)) for k in added)  # no false negatives


def store_with_three_sstables(path, **options):
    s = Store.open(str(path), background=False, **options)
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "blob", "v": "blob"}, primary_key="k")
    for gen in range(3):
        for i in range(gen * 300, gen * 300 + 400):  # 100 keys overlap the next SSTable's
            s.insert("ks", "t", {"k": b"key%05d" % i, "v": b"v%d-%d" % (gen, i)})
        s.flush()
    s.insert("ks", "t", {"k": b"key%05d" % 5, "v": b"memtable"})
    return s


def test_read_payloads_finds_exactly_what_each_sstable_holds(tmp_path):
    with store_with_three_sstables(tmp_path) as s:
        cfs = next(iter(s.cfs.values()))
        assert len(cfs.sstables) == 3
        for i in list(range(0, 1300)) + [5]:
            key = b"key%05d" % i
            expected = [p[1] for p in [cfs.memtable.partitions.get(key)] if p is not None]
            expected += [p for p in (sst.get(token_of(key), key) for sst in cfs.sstables) if p is not None]
            assert list(cfs.read_payloads(None, key)) == expected
            assert list(cfs.read_payloads(token_of(key), key)) == expected
        s.check_invariants()


def test_a_miss_searches_no_sstable_whose_filter_refuses_it(tmp_path):
    with store_with_three_sstables(tmp_path) as s:
        cfs = next(iter(s.cfs.values()))
        searched = []
        for sst in cfs.sstables:  # count the searches of each reader's block index
            sst.get_probed = (lambda f: lambda tok, key: searched.append(key) or f(tok, key))(sst.get_probed)
        cfs.sstables = list(cfs.sstables)  # the view takes the counting get_probed
        misses = [b"absent%05d" % i for i in range(2000)]
        assert all(s.get("ks", "t", {"k": k}) is None for k in misses)
        refused = sum(not any(sst.bloom.might_contain(k) for sst in cfs.sstables) for k in misses)
        assert len(set(searched)) == len(misses) - refused < 100  # 1% fp chance, 3 filters


def test_the_view_follows_flush_compaction_and_truncate(tmp_path):
    with store_with_three_sstables(tmp_path) as s:
        cfs = next(iter(s.cfs.values()))
        s.insert("ks", "t", {"k": b"new", "v": b"1"})
        s.flush()
        assert s.get("ks", "t", {"k": b"new"}) == {"k": b"new", "v": b"1"}
        s.check_invariants()
        s.compact("ks", "t")
        assert len(cfs.sstables) == 1
        s.check_invariants()
        assert s.get("ks", "t", {"k": b"key00005"})["v"] == b"memtable"
        assert s.get("ks", "t", {"k": b"key00350"})["v"] == b"v1-350"
        s.truncate("ks", "t", auto_snapshot=False)
        s.check_invariants()
        assert s.get("ks", "t", {"k": b"key00350"}) is None


def test_blob_keys_the_fast_path_does_not_take_raise_as_before(tmp_path):
    with store_with_three_sstables(tmp_path) as s:
        with pytest.raises(InvalidRequest, match="may not be empty"):
            s.get("ks", "t", {"k": b""})
        with pytest.raises(InvalidRequest, match="exceeds the maximum"):
            s.get("ks", "t", {"k": b"x" * 65536})
        with pytest.raises(InvalidRequest, match="missing partition key"):
            s.get("ks", "t", {"v": b"x"})
        with pytest.raises(InvalidRequest):
            s.get("ks", "t", {"k": b"key00001"}, columns=["nope"])
        assert s.get("ks", "t", {"k": b"key00001"}, columns=["v"]) == {"k": b"key00001", "v": b"v0-1"}
        assert s.get("ks", "t", {"k": b"k" * 65535}) is None


def test_several_versions_are_reconciled_from_one_read(tmp_path):
    with store_with_three_sstables(tmp_path) as s:
        # key00350 is in SSTables 0 and 1 (the newer wins); key00005 in the memtable and SSTable 0
        assert s.get("ks", "t", {"k": b"key00350"}) == {"k": b"key00350", "v": b"v1-350"}
        assert s.get("ks", "t", {"k": b"key00005"}) == {"k": b"key00005", "v": b"memtable"}
        s.delete("ks", "t", {"k": b"key00350"})
        assert s.get("ks", "t", {"k": b"key00350"}) is None
        s.insert("ks", "t", {"k": b"key00360", "v": b"ttl"}, ttl=1000)
        assert s.get("ks", "t", {"k": b"key00360"}, writetime=True)["v"] == b"ttl"
