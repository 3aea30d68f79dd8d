"""Static columns in the engine: one value per partition in the static row (clustering b""), shown on
every row, alone as a row with null clustering, through flush, compaction and every tombstone level."""
import pytest

from engine.clock import ManualClock
from engine.errors import InvalidRequest
from engine.schema import Table, make_table
from engine.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store.open(str(tmp_path / "db"), background=False, clock=ManualClock())
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "int", "c": "int", "s": "int static", "v": "text"}, primary_key=("k", "c"))
    yield s
    s.close()


def rows(store, k=1, **kw):
    return [(r["c"], r.get("s"), r.get("v")) for r in store.select("ks", "t", {"k": k}, **kw)]


def test_schema_flags_static_columns_and_refuses_them_where_cassandra_does():
    t = make_table("ks", "t", {"k": "int", "c": "int", "s": "text static", "v": "int"}, ("k", "c"))
    assert [(c.name, c.cql_type, c.static) for c in t.columns] == [
        ("k", "int", False), ("c", "int", False), ("s", "text", True), ("v", "int", False)]
    assert [c.name for c in t.statics] == ["s"] and Table.from_dict(t.to_dict()) == t
    plain = make_table("ks", "p", {"k": "int", "v": "int"}, "k")
    assert len(plain.to_dict()["columns"][1]) == 5            # no flag written when not static: digests stay
    with pytest.raises(InvalidRequest, match="only useful .and thus allowed. if the table has at least one clustering"):
        make_table("ks", "t", {"k": "int", "s": "int static"}, "k")
    with pytest.raises(InvalidRequest, match="Static column c cannot be part of the PRIMARY KEY"):
        make_table("ks", "t", {"k": "int", "c": "int static"}, ("k", "c"))


@pytest.mark.parametrize("flush", [False, True])
def test_one_value_per_partition_shown_on_every_row(store, flush):
    store.insert("ks", "t", {"k": 1, "c": 1, "s": 10, "v": "a"})
    store.insert("ks", "t", {"k": 1, "c": 2, "v": "b"})
    if flush:
        store.flush()
    store.insert("ks", "t", {"k": 1, "c": 3, "s": 30, "v": "c"})      # the newer static value wins everywhere
    store.insert("ks", "t", {"k": 2, "c": 1, "s": 99, "v": "x"})
    assert rows(store) == [(1, 30, "a"), (2, 30, "b"), (3, 30, "c")]
    assert rows(store, start=(2,)) == [(2, 30, "b"), (3, 30, "c")]       # a slice shows it too
    assert rows(store, reverse=True) == [(3, 30, "c"), (2, 30, "b"), (1, 30, "a")]
    assert store.get("ks", "t", {"k": 1, "c": 2})["s"] == 30
    assert rows(store, 2) == [(1, 99, "x")]


def test_a_partition_with_only_static_cells_is_one_row_with_null_clustering(store):
    store.insert("ks", "t", {"k": 1, "s": 5})                              # no clustering: static only
    assert store.select("ks", "t", {"k": 1}) == [{"k": 1, "c": None, "s": 5}]
    assert rows(store, start=(0,)) == []                                  # a clustering slice: no row
    assert store.get("ks", "t", {"k": 1, "c": 1}) is None
    with pytest.raises(InvalidRequest, match="only static columns can be written without them"):
        store.insert("ks", "t", {"k": 1, "s": 6, "v": "a"})
    with pytest.raises(InvalidRequest, match="missing clustering column"):
        store.insert("ks", "t", {"k": 1, "v": "a"})
    store.insert("ks", "t", {"k": 1, "c": 1, "v": "a"})
    assert rows(store) == [(1, 5, "a")]
    store.delete("ks", "t", {"k": 1, "c": 1})                              # the row goes, the static stays
    assert rows(store) == [(None, 5, None)]


def test_tombstones_and_compaction(store):
    for c in range(4):
        store.insert("ks", "t", {"k": 1, "c": c, "s": 7, "v": str(c)})
    store.flush()
    store.delete("ks", "t", {"k": 1}, start=(0,), end=(1,))                # a range never covers the static row
    store.delete("ks", "t", {"k": 1}, end=(2,), end_inclusive=False)       # nor one open at the start
    assert rows(store) == [(2, 7, "2"), (3, 7, "3")]
    store.delete("ks", "t", {"k": 1}, columns=["s"])                       # DELETE s: no clustering needed
    assert rows(store) == [(2, None, "2"), (3, None, "3")]
    store.insert("ks", "t", {"k": 1, "s": 8})
    store.flush()
    store.compact("ks", "t")
    assert rows(store) == [(2, 8, "2"), (3, 8, "3")]
    store.delete("ks", "t", {"k": 1})                                      # a partition deletion takes it all
    store.flush()
    store.compact("ks", "t")
    assert rows(store) == []
    store.insert("ks", "t", {"k": 1, "s": 9}, ttl=10)
    assert rows(store) == [(None, 9, None)]
    store.clock.advance(11)
    assert rows(store) == []
