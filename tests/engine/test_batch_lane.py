"""The batch's key-value lane (engine/batch.py): a batch that starts with plain inserts into a
table of one blob key and one blob column holds them as keys, values and timestamps and packs
them on exit. It must leave exactly what the general batch path leaves (every insert with ttl=0
takes that path, with the same payloads): the same commit-log bytes, the same memtable entries
and statistics, the same reads; and any other write closes the lane without reordering."""
import pytest

from engine import mutation as mut
from engine.errors import InvalidRequest
from engine.partition import decode_partition
from engine.schema_change import with_options
from tests.engine.test_put_fast_path import _segment_bytes, _store

KV = [{"k": b"user%012d" % i, "v": bytes([i]) * 100} for i in range(40)] + [
    {"k": b"big", "v": b"b" * 300},        # a payload over 255 bytes
    {"k": b"K" * 300, "v": b"v"},          # a key over 255 bytes
    {"k": b"empty", "v": b""},             # an empty value
    {"v": b"first", "k": b"order"},        # the value before the key
    {"k": b"user000000000003", "v": b"again"},  # a key the batch holds already
]
FIXED = [{"k": b"user%012d" % i, "v": bytes([i]) * 100} for i in range(40)] + [
    {"k": b"user000000000003", "v": b"again".ljust(100)}]   # one layout: kv_lane's matrix
CLOSERS = {   # writes the lane does not take: each closes it, the writes after take the columns
    "null": lambda b, ttl: b.insert("ks", "kv", {"k": b"n", "v": None}, ttl=ttl),
    "bytearray": lambda b, ttl: b.insert("ks", "kv", {"k": b"ba", "v": bytearray(b"ba")}, ttl=ttl),
    "ttl": lambda b, ttl: b.insert("ks", "kv", {"k": b"t", "v": b"t"}, ttl=60),
    "timestamp": lambda b, ttl: b.insert("ks", "kv", {"k": b"ts", "v": b"t"}, ttl=ttl, timestamp=5),
    "delete": lambda b, ttl: b.delete("ks", "kv", {"k": b"user000000000007"}),
    "other_table": lambda b, ttl: b.insert("ks", "plain", {"k": 1, "a": "x"}, ttl=ttl),
    "outside": lambda b, ttl: b.updates.append(_outside(b.store)),
    "none": lambda b, ttl: None,
}


def _outside(store):
    t = store.table("ks", "kv")
    key, update = mut.build_insert(t, {"k": b"user000000000001", "v": b"out"}, 3, 100, None, 1 << 20)
    return t, key, update


def _batch(store, ttl, closer, rows):
    with store.batch() as batch:
        stamps = [batch.insert("ks", "kv", row, ttl=ttl) for row in rows]
        CLOSERS[closer](batch, ttl)
        stamps += [batch.insert("ks", "kv", {"k": b"after%d" % i, "v": b"a"}, ttl=ttl) for i in range(3)]
    return stamps


def _memtable(store, table="kv"):
    return store.cfs[store.table("ks", table).id].memtable


@pytest.mark.parametrize("layout", ["mixed", "fixed"])
@pytest.mark.parametrize("closer", sorted(CLOSERS))
def test_the_lane_writes_what_the_general_batch_writes(tmp_path, closer, layout):
    rows = KV if layout == "mixed" else FIXED
    lane, general = _store(str(tmp_path / "lane")), _store(str(tmp_path / "general"))
    with lane.batch() as probe:  # the lane opens on a kv table's first plain insert
        probe.insert("ks", "kv", {"k": b"probe", "v": b"p"})
        assert probe._lane is lane.table("ks", "kv") and len(probe._lane_keys) == 1 and not probe._keys
    general.insert("ks", "kv", {"k": b"probe", "v": b"p"}, ttl=0)
    stamps = _batch(lane, None, closer, rows)
    assert stamps == _batch(general, 0, closer, rows)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # the probe: a batch of one record against one insert's record, the same bytes
    assert _segment_bytes(lane.path) == _segment_bytes(general.path)
    for table in ("kv", "plain"):
        a, b = _memtable(lane, table), _memtable(general, table)
        assert a.partitions == b.partitions and a.size_bytes == b.size_bytes and a.updates == b.updates
        assert all(getattr(a.stats, s) == getattr(b.stats, s) for s in a.stats.__slots__), table
    for row in rows + [{"k": b"after2"}, {"k": b"n"}, {"k": b"t"}]:
        key = {"k": row["k"]}
        assert lane.get("ks", "kv", key, writetime=True) == general.get("ks", "kv", key, writetime=True)
    assert lane.get("ks", "kv", {"k": b"user000000000003"})["v"] == rows[-1]["v"]  # the later write wins
    lane.close()
    general.close()


def test_the_lane_raises_what_store_insert_raises_and_keeps_going(tmp_path):
    store = _store(str(tmp_path / "s"), max_value_bytes=1000)
    bad = [{"k": b"k", "v": b"x" * 1001}, {"k": b"", "v": b"x"}, {"k": b"x" * 65536, "v": b"x"},
           {"k": "not bytes", "v": b"x"}, {"k": b"k", "v": "not bytes"}, {"k": b"k", "zz": b"1"}]
    with store.batch() as batch:
        batch.insert("ks", "kv", {"k": b"ok1", "v": b"1"})
        assert batch._lane is not None
        for row in bad:
            with pytest.raises(InvalidRequest) as lane:
                batch.insert("ks", "kv", row)
            with pytest.raises(InvalidRequest) as single:
                store.insert("ks", "kv", row)
            assert str(lane.value) == str(single.value), row
        batch.insert("ks", "kv", {"k": b"ok2", "v": b"x" * 1000})  # exactly max_value_bytes
    assert store.get("ks", "kv", {"k": b"ok1"})["v"] == b"1"
    assert store.get("ks", "kv", {"k": b"ok2"})["v"] == b"x" * 1000
    assert len(_memtable(store)) == 2
    store.close()


def test_a_raising_block_applies_nothing_and_a_batch_entered_again_applies_only_later_writes(tmp_path):
    store = _store(str(tmp_path / "s"))
    batch = store.batch()
    with pytest.raises(RuntimeError):
        with batch:
            batch.insert("ks", "kv", {"k": b"a", "v": b"1"})
            raise RuntimeError("the block fails")
    assert store.get("ks", "kv", {"k": b"a"}) is None and not _memtable(store).partitions
    batch._empty()
    with batch:
        batch.insert("ks", "kv", {"k": b"b", "v": b"2"})
    with batch:
        batch.insert("ks", "kv", {"k": b"c", "v": b"3"})
    assert _memtable(store).updates == 2 and store.get("ks", "kv", {"k": b"c"})["v"] == b"3"
    store.close()


def test_an_alter_during_the_lane_closes_it_in_order(tmp_path):
    """ALTER makes a new Table: the next insert sees it, closes the lane (its rows keep their
    place, first) and takes the general path against the new schema."""
    store = _store(str(tmp_path / "s"))
    with store.batch() as batch:
        batch.insert("ks", "kv", {"k": b"a", "v": b"old"})
        store.catalog.alter_table("ks", "kv", lambda t: with_options(t, {"default_time_to_live": 60}, 1))
        batch.insert("ks", "kv", {"k": b"a", "v": b"new"})
        assert batch._lane is False and len(batch._keys) == 2
    assert store.get("ks", "kv", {"k": b"a"})["v"] == b"new"
    newest = decode_partition(_memtable(store).get(b"a")[-1]).rows[b""].cells
    assert newest and all(c[2] == 60 for c in newest.values())   # the new table's default TTL
    store.close()


@pytest.mark.parametrize("option", ["row_cache", "index"])
def test_the_lane_keeps_the_row_cache_and_indexes_current(tmp_path, option):
    store = _store(str(tmp_path / "s"), row_cache_size=100)
    store.insert("ks", "kv", {"k": b"a", "v": b"old"})
    store.flush()
    assert store.get("ks", "kv", {"k": b"a"})["v"] == b"old"   # now in the row cache
    if option == "index":
        store.create_index("ks", "kv", "v")
    with store.batch() as batch:
        batch.insert("ks", "kv", {"k": b"a", "v": b"new"})
        batch.insert("ks", "kv", {"k": b"b", "v": b"new"})
    assert store.get("ks", "kv", {"k": b"a"})["v"] == b"new"
    if option == "index":
        assert sorted(r["k"] for r in store.index_query_all("ks", "kv", [("v", "=", b"new")])) == [b"a", b"b"]
        assert not list(store.index_query_all("ks", "kv", [("v", "=", b"old")]))
    store.close()
