"""The lean point read (ColumnFamilyStore.read_payloads over its read view, Store.get's blob-key
path): the same answers as every SSTable's own get, bloom bits tested exactly as
BloomFilter.might_contain_hash tests them, a view that follows every change of the SSTable list,
and the same errors as the general path for keys it does not take."""
import pytest

from engine.errors import InvalidRequest
from engine.store import Store
from engine.token import token as token_of


def store_with_three_sstables(path, fp_chance=0.01):
    s = Store.open(str(path), background=False)
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "blob", "v": "blob"}, primary_key="k",
                   options={"bloom_filter_fp_chance": fp_chance})
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
            expected = [p for p in [cfs.memtable.partitions.get(key)] if p is not None]
            expected += [p for p in (sst.get(token_of(key), key) for sst in cfs.sstables) if p is not None]
            assert list(cfs.read_payloads(None, key)) == expected
            assert list(cfs.read_payloads(token_of(key), key)) == expected
        s.check_invariants()


@pytest.mark.parametrize("fp_chance", [0.01, 0.3, 1.0])  # 1.0: "always present" filters (m == 0)
def test_a_read_searches_exactly_the_sstables_whose_filter_admits_the_key(tmp_path, fp_chance):
    """The bits read_payloads tests inline (BloomFilter.probe_view) answer as might_contain."""
    with store_with_three_sstables(tmp_path, fp_chance) as s:
        cfs = next(iter(s.cfs.values()))
        searched = []
        for sst in cfs.sstables:  # record each search of a reader's block index
            sst.get_probed = (lambda f, g: lambda tok, key: searched.append((g, key)) or f(tok, key))(
                sst.get_probed, sst.generation)
        cfs.sstables = list(cfs.sstables)  # the view takes the recording get_probed
        keys = [b"absent%05d" % i for i in range(2000)] + [b"key%05d" % i for i in range(0, 1300, 7)]
        for k in keys:
            s.get("ks", "t", {"k": k})
        admitted = [(sst.generation, k) for k in keys for sst in cfs.sstables if sst.bloom.might_contain(k)]
        assert sorted(searched) == sorted(admitted)
        if fp_chance == 0.01:
            assert sum(k.startswith(b"absent") for _, k in searched) < 100


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
        row = s.get("ks", "t", {"k": bytearray(b"key00001")})  # the general key path; the row
        assert row == {"k": b"key00001", "v": b"v0-1"} and type(row["k"]) is bytearray  # keeps the given key


def test_several_versions_are_reconciled_from_one_read(tmp_path):
    with store_with_three_sstables(tmp_path) as s:
        # key00350 is in SSTables 0 and 1 (the newer wins); key00005 in the memtable and SSTable 0
        assert s.get("ks", "t", {"k": b"key00350"}) == {"k": b"key00350", "v": b"v1-350"}
        assert s.get("ks", "t", {"k": b"key00005"}) == {"k": b"key00005", "v": b"memtable"}
        s.delete("ks", "t", {"k": b"key00350"})
        assert s.get("ks", "t", {"k": b"key00350"}) is None
        s.insert("ks", "t", {"k": b"key00360", "v": b"ttl"}, ttl=1000)
        assert s.get("ks", "t", {"k": b"key00360"}, writetime=True)["v"] == b"ttl"


def test_the_token_taken_from_the_bloom_hash_is_the_partitioners(tmp_path):
    """read_payloads takes a key's token from its bloom hash (h1) when no tail byte (len % 16)
    is >= 0x80, any other key's from engine.token: every key is searched with token(key) and
    found (a wrong token misses the block index)."""
    import random
    rnd = random.Random(7)
    ascii_keys = [bytes(rnd.choice(b"abcxyz0129~") for _ in range(n)) for n in range(1, 41)]
    binary_keys = [rnd.randbytes(n) for n in range(1, 41) for _ in range(4)]  # tails with bytes >= 0x80
    high_head = [b"\xff" * 16, b"\x80" * 32, b"\xff" * 16 + b"a", b"\xff" * 16 + b"\x80", b"ab\xff", b"\x7f" * 17]
    high_head += [rnd.randbytes(16 * m) + bytes(rnd.randrange(0x80) for _ in range(n))
                  for m in (1, 2) for n in (0, 3, 15)]  # non-ASCII, but an ASCII (or no) tail: h1
    keys = list(dict.fromkeys(ascii_keys + binary_keys + high_head))
    with Store.open(str(tmp_path), background=False) as s:
        s.create_keyspace("ks")
        s.create_table("ks", "t", {"k": "blob", "v": "blob"}, primary_key="k")
        for k in keys:
            s.insert("ks", "t", {"k": k, "v": k})
        s.flush()
        cfs = next(iter(s.cfs.values()))
        searched = []
        for sst in cfs.sstables:  # record the token each search is given
            sst.get_probed = (lambda f: lambda tok, key: searched.append((tok, key)) or f(tok, key))(sst.get_probed)
        cfs.sstables = list(cfs.sstables)
        for k in keys:
            assert list(cfs.read_payloads(None, k)) == list(cfs.read_payloads(token_of(k), k)) != []
            assert s.get("ks", "t", {"k": k}) == {"k": k, "v": k}
        assert {key for _, key in searched} == set(keys)
        assert all(tok == token_of(key) for tok, key in searched)


def test_the_blob_key_fast_path_follows_alter_table(tmp_path):
    """Store.get's inlined fast path is decided once per Table object (results.read_plan): an
    ALTER TABLE makes a new one, so a dropped column is hidden and an added one shown at once."""
    from engine import schema_change as sc
    with store_with_three_sstables(tmp_path) as s:
        assert s.get("ks", "t", {"k": b"key00001"}) == {"k": b"key00001", "v": b"v0-1"}  # plan cached
        ts = s.clock.wall_us() + 10
        s.catalog.alter_table("ks", "t", lambda t: sc.add_columns(t, [("x", "int")], ts=ts))
        s.insert("ks", "t", {"k": b"key00001", "x": 7})
        s.flush()
        assert s.get("ks", "t", {"k": b"key00001"}) == {"k": b"key00001", "v": b"v0-1", "x": 7}
        assert s.get("ks", "t", {"k": b"key00002"}) == {"k": b"key00002", "v": b"v0-2"}
        ts = s.clock.wall_us() + 10
        s.catalog.alter_table("ks", "t", lambda t: sc.drop_columns(t, ["v"], ts=ts))
        assert s.get("ks", "t", {"k": b"key00001"}) == {"k": b"key00001", "x": 7}
        assert s.get("ks", "t", {"k": b"key00002"}) == {"k": b"key00002"}
        assert s.get("ks", "t", {"k": b"key00005"}) == {"k": b"key00005"}  # two versions: reconciled
        s.insert("ks", "t", {"k": b"key00005", "x": 8}, timestamp=ts - 5)  # older than the drop
        assert s.get("ks", "t", {"k": b"key00005"}) == {"k": b"key00005", "x": 8}


def test_a_row_cache_takes_the_general_path(tmp_path):
    s = Store.open(str(tmp_path), background=False, row_cache_size=10)
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "blob", "v": "blob"}, primary_key="k")
    s.insert("ks", "t", {"k": b"a", "v": b"1"})
    s.flush()
    for _ in range(3):
        assert s.get("ks", "t", {"k": b"a"}) == {"k": b"a", "v": b"1"}
    assert s.tablestats()[0]["row_cache_hit_rate"] == pytest.approx(2 / 3)
    s.close()

