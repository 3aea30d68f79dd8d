"""engine/collections.py and collection cells in partitions: element cells across flush and
compaction, the collection tombstone, element TTL, the payload with cell paths, the old payloads."""
from __future__ import annotations

import shutil
import pathlib

import pytest
from hypothesis import given, settings, strategies as st

from engine import collections as coll
from engine.collections import CollectionOp as Op
from engine.errors import InvalidRequest
from engine.mutation import build_insert_encoded
from engine.update_check import decode_update
from engine.partition import decode_partition, encode_partition
from engine.schema import make_table
from engine.store import Store

DATA = pathlib.Path(__file__).parent / "data"
T0 = 1_700_000_000_000_000


@pytest.fixture
def store(tmp_path):
    s = Store.open(str(tmp_path / "db"))
    s.create_keyspace("ks")
    s.create_table("ks", "t", {"k": "int", "l": "list<int>", "s": "set<text>", "m": "map<text, int>",
                               "f": "frozen<map<text, int>>"}, "k")
    yield s
    s.close()


def test_elements_are_cells_that_survive_flush_and_compaction(store):
    store.insert("ks", "t", {"k": 1, "l": [1, 2], "s": {"a", "b"}, "m": {"x": 1}, "f": {"q": 1}}, timestamp=T0)
    store.flush()
    store.insert("ks", "t", {"k": 1, "l": Op("append", [3]), "s": Op("add", {"c"}), "m": Op("add", {"y": 2})},
                 timestamp=T0 + 1)
    store.insert("ks", "t", {"k": 1, "l": Op("prepend", [0]), "s": Op("remove", ["a"])}, timestamp=T0 + 2)
    store.flush()
    store.delete("ks", "t", {"k": 1}, columns=[("m", Op("remove", ["x"]))], timestamp=T0 + 3)
    want = {"k": 1, "l": [0, 1, 2, 3], "s": frozenset({"b", "c"}), "m": {"y": 2}, "f": {"q": 1}}
    assert store.get("ks", "t", {"k": 1}) == want
    store.flush()
    store.compact("ks", "t")
    assert store.get("ks", "t", {"k": 1}) == want


def test_an_overwrite_is_a_collection_tombstone_that_shadows_older_elements_only(store):
    store.insert("ks", "t", {"k": 1, "s": {"old1", "old2"}}, timestamp=T0)
    store.flush()
    store.insert("ks", "t", {"k": 1, "s": Op("add", {"late"})}, timestamp=T0 + 10)   # newer than the overwrite
    store.insert("ks", "t", {"k": 1, "s": {"new"}}, timestamp=T0 + 5)
    assert store.get("ks", "t", {"k": 1})["s"] == frozenset({"new", "late"})
    store.flush()
    store.compact("ks", "t")
    assert store.get("ks", "t", {"k": 1})["s"] == frozenset({"new", "late"})
    store.delete("ks", "t", {"k": 1}, columns=["s"], timestamp=T0 + 20)             # DELETE s: at ts, all of it
    assert "s" not in store.get("ks", "t", {"k": 1})


def test_an_overwrite_with_an_empty_collection_reads_as_null(store):
    store.insert("ks", "t", {"k": 2, "l": [1], "m": {"a": 1}}, timestamp=T0)
    store.insert("ks", "t", {"k": 2, "l": [], "m": None}, timestamp=T0 + 1)
    assert store.get("ks", "t", {"k": 2}) == {"k": 2}


def test_each_element_has_its_own_ttl(store):
    store.insert("ks", "t", {"k": 3, "m": {"keep": 1}}, timestamp=T0)
    store.insert("ks", "t", {"k": 3, "m": Op("add", {"brief": 2})}, ttl=60, timestamp=T0 + 1)
    p = store.read_partition(store.table("ks", "t"), (3).to_bytes(4, "big"))
    (row,) = p.rows.values()
    ttls = {key[1]: cell[2] for key, cell in row.cells.items() if isinstance(key, tuple)}
    assert sorted(ttls.values()) == [0, 0, 60]                   # the tombstone, keep, brief
    assert store.get("ks", "t", {"k": 3})["m"] == {"keep": 1, "brief": 2}


def test_payload_with_cell_paths_round_trips_and_passes_the_replica_check():
    table = make_table("ks", "t", {"k": "int", "a": "int", "l": "list<text>", "s": "set<int>"}, "k")
    key, update, payload = build_insert_encoded(table, {"k": 1, "a": 5, "l": ["x", "y"], "s": {3, 1}},
                                                T0, 1_700_000_000, None, 1 << 20)
    assert encode_partition(update) == payload
    assert decode_partition(payload) == update == decode_update(payload)
    cells = next(iter(update.rows.values())).cells
    assert cells[(3, b"")] == (T0 - 1, 1_700_000_000, 0, None)  # the tombstone at ts - 1
    assert [k[1] for k in sorted(k for k in cells if isinstance(k, tuple) and k[0] == 4)] == \
        [b"", coll.encode_ordered("int", 1), coll.encode_ordered("int", 3)]


def test_the_replica_refuses_cells_out_of_path_order():
    import msgpack
    bad = msgpack.packb([None, [[b"", None, None, [[2, b"\x02"], 1, b""], [[2, b"\x01"], 1, b""]]], []])
    with pytest.raises(InvalidRequest, match="out of order"):
        decode_update(bad)


def test_a_data_directory_from_before_cell_paths_reads_unchanged(tmp_path):
    path = tmp_path / "v1"
    shutil.copytree(DATA / "payload_v1", path)
    s = Store.open(str(path))
    try:
        assert s.get("ks", "t", {"k": 1, "c": "a"}) == {"k": 1, "c": "a", "v": "v1"}
        assert s.select("ks", "t", {"k": 9}) == [{"k": 9, "c": "z", "v": "in the commit log"}]
        s.flush()
        s.compact("ks", "t")
        assert s.get("ks", "t", {"k": 4, "c": "a"}) == {"k": 4, "c": "a", "v": "v4", "n": 40}
    finally:
        s.close()


def test_types_refused_as_cassandra_refuses_them():
    for bad in ("list<list<int>>", "map<set<int>, int>", "list<nope>", "map<int>"):
        with pytest.raises(InvalidRequest):
            coll.parse(bad)
    with pytest.raises(InvalidRequest, match="non-frozen"):
        make_table("ks", "t", {"k": "set<int>", "v": "int"}, "k")


def test_collections_cannot_be_indexed(store):
    for column in ("l", "f"):
        with pytest.raises(InvalidRequest, match="indexes on collections"):
            store.create_index("ks", "t", column)
    assert str(coll.parse("frozen<map<text,list<set<int>>>>")) == "frozen<map<text, frozen<list<frozen<set<int>>>>>>"


_lists = st.lists(st.integers(-2**31, 2**31 - 1), max_size=4)
_frozen = st.one_of(_lists, st.frozensets(st.text(max_size=3), max_size=3))


@settings(max_examples=200, deadline=None)
@given(a=_lists, b=_lists)
def test_frozen_list_order_is_cassandras(a, b):
    t = coll.parse("frozen<list<int>>")
    ea, eb = coll.encode_ordered(t, a), coll.encode_ordered(t, b)
    assert (ea < eb) == (a < b) and (ea == eb) == (a == b)       # element-wise, a prefix first
    assert coll.decode_ordered(t, ea + b"tail", 0) == (a, len(ea))
    assert coll.deserialize(t, coll.serialize(t, a)) == a


@settings(max_examples=100, deadline=None)
@given(m=st.dictionaries(st.text(max_size=3), st.lists(st.booleans(), max_size=2), max_size=3))
def test_frozen_map_round_trips(m):
    t = coll.parse("frozen<map<text, frozen<list<boolean>>>>")
    assert coll.deserialize(t, coll.serialize(t, m)) == m
    assert coll.decode_ordered(t, coll.encode_ordered(t, m), 0)[0] == m



def test_the_dump_tools_show_elements_by_key():
    from tools.partition_text import partition_text
    table = make_table("ks", "t", {"k": "int", "s": "set<int>", "m": "map<text, int>", "f": "frozen<list<int>>"}, "k")
    _, _, payload = build_insert_encoded(table, {"k": 1, "s": {2}, "m": {"a": 1}, "f": [7]}, 10, 100, None, 1 << 20)
    text = partition_text(table, payload)
    for part in ("s[]=tombstone(ts=9, ldt=100)", "s[2]=(ts=10)", "m['a']=1(ts=10)", "f=[7](ts=10)"):
        assert part in text
