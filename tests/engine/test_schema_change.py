"""ALTER TABLE in the engine: ids never reused, dropped cells never back (reads, restart, compaction)."""
import pytest

from engine import schema_change as sc
from engine.clock import ManualClock
from engine.errors import InvalidRequest
from engine.schema import Table, make_table
from engine.store import Store


def _open(path):
    return Store.open(str(path), background=False, clock=ManualClock())


@pytest.fixture
def store(tmp_path):
    s = _open(tmp_path / "db")
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "int", "c": "int", "v": "text", "w": "int"}, primary_key=("k", "c"))
    yield s
    if not s._closed:
        s.close()


def _alter(store, change):
    return store.catalog.alter_table("ks", "t", change)


def _rows(store):
    return store.select("ks", "t", {"k": 1})


def test_add_gets_a_new_id_and_drop_is_remembered():
    t = make_table("ks", "t", {"k": "int", "v": "text"}, primary_key="k")
    t2 = sc.add_columns(t, [("x", "int")], ts=10)
    assert t2.column("x").id == 3 and t2.altered_us == 10
    t3 = sc.drop_columns(t2, ["x"], ts=20)
    assert "x" not in t3.by_name and t3.dropped == {"x": ("int", 20, 3)}
    t4 = sc.add_columns(t3, [("x", "int")], ts=30)
    assert t4.column("x").id == 4 and t4.dropped_floor == {4: 20}
    with pytest.raises(InvalidRequest, match="incompatible with previous type int"):
        sc.add_columns(t3, [("x", "text")], ts=30)
    with pytest.raises(InvalidRequest, match="Column with name 'v' already exists"):
        sc.add_columns(t, [("v", "int")], ts=30)
    assert sc.add_columns(t, [("v", "int")], ts=30, if_not_exists=True) is t
    with pytest.raises(InvalidRequest, match="Cannot drop PRIMARY KEY column k"):
        sc.drop_columns(t, ["k"], ts=30)
    with pytest.raises(InvalidRequest, match="Column nope was not found in table t"):
        sc.drop_columns(t, ["nope"], ts=30)
    with pytest.raises(InvalidRequest, match="Cannot rename non PRIMARY KEY column v"):
        sc.rename_columns(t, [("v", "v2")], ts=30)
    assert Table.from_dict(t4.to_dict()) == t4


def test_dropped_cells_never_come_back(store, tmp_path):
    store.insert("ks", "t", {"k": 1, "c": 1, "v": "old", "w": 1})
    store.flush()
    store.insert("ks", "t", {"k": 1, "c": 2, "v": "old2"}, timestamp=store.insert("ks", "t", {"k": 1, "c": 3, "w": 3}))
    drop_ts = store.clock.wall_us() + 10
    _alter(store, lambda t: sc.drop_columns(t, ["v"], ts=drop_ts))
    assert _rows(store) == [{"k": 1, "c": 1, "w": 1}, {"k": 1, "c": 2}, {"k": 1, "c": 3, "w": 3}]
    with pytest.raises(InvalidRequest):
        store.insert("ks", "t", {"k": 1, "c": 1, "v": "x"})
    _alter(store, lambda t: sc.add_columns(t, [("v", "text")], ts=drop_ts + 1))
    assert all("v" not in r for r in _rows(store))              # re-added: the old cells stay dead
    store.insert("ks", "t", {"k": 1, "c": 1, "v": "late"}, timestamp=drop_ts)   # at the drop: hidden
    assert "v" not in _rows(store)[0]
    store.insert("ks", "t", {"k": 1, "c": 1, "v": "new"}, timestamp=drop_ts + 5)
    assert _rows(store)[0] == {"k": 1, "c": 1, "v": "new", "w": 1}
    store.close()
    store = _open(tmp_path / "db")                               # schema.db keeps drops and ids
    assert _rows(store)[0] == {"k": 1, "c": 1, "v": "new", "w": 1} and "v" not in _rows(store)[1]
    store.flush()
    cfs = store.cfs[store.table("ks", "t").id]
    store.compact("ks", "t")
    (sst,) = cfs.sstables
    ids = {col for rec in sst.scan() for p in [_decode(rec)] for row in p.rows.values() for col in row.cells}
    old_v = 3
    assert old_v not in ids                                       # compaction purged the dropped cells
    assert _rows(store)[0] == {"k": 1, "c": 1, "v": "new", "w": 1}
    store.close()


def _decode(rec):
    from engine.partition import decode_partition
    return decode_partition(rec[2])


def test_rename_key_column_keeps_data(store):
    store.insert("ks", "t", {"k": 1, "c": 7, "v": "a"})
    _alter(store, lambda t: sc.rename_columns(t, [("c", "ck")], ts=store.clock.wall_us() + 1))
    assert _rows(store) == [{"k": 1, "ck": 7, "v": "a"}]
    with pytest.raises(InvalidRequest, match="another column with that name already exists"):
        _alter(store, lambda t: sc.rename_columns(t, [("ck", "v")], ts=store.clock.wall_us() + 2))


def test_options_and_keyspace():
    t = make_table("ks", "t", {"k": "int"}, primary_key="k")
    t2 = sc.with_options(t, {"gc_grace_seconds": 5}, ts=3)
    assert t2.option("gc_grace_seconds") == 5 and t2.altered_us == 3
    with pytest.raises(InvalidRequest, match="unknown table options"):
        sc.with_options(t, {"nope": 1}, ts=3)


def test_cells_of_a_column_not_learnt_yet_are_kept():
    """A replica with a stale definition (an ADD still spreading) must not purge the new column's
    cells in a compaction; a dropped column's old id is removed."""
    from engine.dropped_columns import visible
    from engine.partition import Partition, Row
    t = make_table("ks", "t", {"k": "int", "v": "text", "w": "int"}, primary_key="k")   # ids 1, 2, 3
    stale = sc.drop_columns(t, ["w"], ts=100)                                        # w (id 3) dropped
    newer = sc.add_columns(stale, [("x", "int")], ts=200)                           # a peer added x: id 4
    assert stale.next_column_id == 4 and newer.column("x").id == 4
    p = Partition(None, {b"": Row(None, {0: (50, 0, 0, b""), 2: (50, 0, 0, b"v"), 3: (50, 0, 0, b"w"),
                                         4: (300, 0, 0, b"x")})})
    assert set(visible(stale, p).rows[b""].cells) == {0, 2, 4}
    assert set(visible(newer, p).rows[b""].cells) == {0, 2, 4}
    assert set(p.rows[b""].cells) == {0, 2, 3, 4}                                   # the input is untouched


def test_dropped_cells_stay_hidden_on_the_single_row_fast_paths(tmp_path):
    """A table without clustering reads plain rows without Partition objects (results.read_row,
    scan); a dropped column's cells must stay hidden there too, in memtables and SSTables."""
    store = _open(tmp_path / "flat")
    store.create_keyspace("ks")
    store.create_table("ks", "kv", {"k": "int", "v": "text", "w": "int"}, primary_key=("k",))
    store.insert("ks", "kv", {"k": 1, "v": "gone", "w": 1})
    store.flush()
    store.insert("ks", "kv", {"k": 2, "v": "gone too", "w": 2})
    drop_ts = store.clock.wall_us() + 10
    store.catalog.alter_table("ks", "kv", lambda t: sc.drop_columns(t, ["v"], ts=drop_ts))
    for _ in range(2):
        assert store.get("ks", "kv", {"k": 1}) == {"k": 1, "w": 1}
        assert store.get("ks", "kv", {"k": 2}) == {"k": 2, "w": 2}
        assert sorted(store.scan_all("ks", "kv"), key=lambda r: r["k"]) == [{"k": 1, "w": 1}, {"k": 2, "w": 2}]
        store.flush()
    store.close()


def test_inserts_follow_each_alter_of_a_table_already_written(store):
    """Store._resolve gives inserts and reads the current definition after each ALTER."""
    store.insert("ks", "t", {"k": 1, "c": 1, "v": "a"})          # under the first definition
    _alter(store, lambda t: sc.add_columns(t, [("x", "int")], ts=t.altered_us + 1))
    store.insert("ks", "t", {"k": 1, "c": 2, "x": 7})
    assert store.get("ks", "t", {"k": 1, "c": 2})["x"] == 7
    _alter(store, lambda t: sc.with_options(t, {"default_time_to_live": 100}, ts=t.altered_us + 1))
    store.insert("ks", "t", {"k": 1, "c": 3, "v": "b"})
    store.clock.advance(101)
    assert [r["c"] for r in _rows(store)] == [1, 2]              # the default TTL applies at once
    _alter(store, lambda t: sc.drop_columns(t, ["v"], ts=store.new_timestamp()))
    with pytest.raises(InvalidRequest, match="unknown column 'v'"):
        store.insert("ks", "t", {"k": 1, "c": 4, "v": "c"})
