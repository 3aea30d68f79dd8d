"""ring/cql/collection_ops.py through prepare: what each collection operation becomes, and the refusals."""
from __future__ import annotations

import pytest

from engine.collections import CollectionOp
from engine.errors import InvalidRequest
from engine.schema import Keyspace, make_table
from ring.cql.collection_ops import settle
from ring.cql.prepare import prepare

TABLE = make_table("ks", "t", {"k": "int", "l": "list<int>", "s": "set<text>", "m": "map<text, int>",
                               "f": "frozen<list<int>>", "v": "int"}, "k")
KEYSPACES = {"ks": Keyspace("ks", tables={"t": TABLE})}


def ops(query, values=()):
    return prepare(query, "ks", KEYSPACES).plan.operations(list(values))


def test_each_operation_becomes_an_engine_op():
    (_, args), = ops("UPDATE t SET l = l + [1], s = s - {'a'}, m['x'] = 2 WHERE k = 1")
    assert args["row"]["l"] == CollectionOp("append", [1])
    assert args["row"]["s"] == CollectionOp("remove", frozenset({"a"}))
    assert args["row"]["m"] == CollectionOp("add", {"x": 2})
    (_, args), = ops("UPDATE t SET l = [0] + l, m = m - ? WHERE k = 1", [frozenset({"y"})])
    assert args["row"]["l"] == CollectionOp("prepend", [0]) and args["row"]["m"] == CollectionOp("remove", frozenset({"y"}))
    (_, args), = ops("DELETE m['x'], l[2] FROM t WHERE k = 1")
    assert args["columns"] == [("m", CollectionOp("remove", ["x"])), ("l", CollectionOp("list_delete_index", 2))]
    p = prepare("UPDATE t SET m[?] = ? WHERE k = ?", "ks", KEYSPACES)
    assert [(b.name, str(b.type)) for b in p.bind] == [("key(m)", "text"), ("value(m)", "int"), ("k", "int")]


@pytest.mark.parametrize("query, message", [
    ("UPDATE t SET v = v + 1 WHERE k = 1", "non collection column v"),
    ("UPDATE t SET f = f + [1] WHERE k = 1", "frozen collection column f"),
    ("UPDATE t SET s = {'a'} + s WHERE k = 1", "non list column s"),
    ("UPDATE t SET s['a'] = 1 WHERE k = 1", "set column s"),
    ("DELETE s['a'] FROM t WHERE k = 1", "set column s"),
])
def test_refusals_in_cassandras_words(query, message):
    with pytest.raises(InvalidRequest, match=message):
        prepare(query, "ks", KEYSPACES)


def test_list_operations_settle_on_the_list_as_read():
    current = [(b"p0" * 8, 5), (b"p1" * 8, 6), (b"p2" * 8, 5)]
    assert settle(CollectionOp("list_remove", [5]), current, "l") == CollectionOp("delete_paths", [b"p0" * 8, b"p2" * 8])
    assert settle(CollectionOp("list_put_index", 9, 1), current, "l") == CollectionOp("put", 9, b"p1" * 8)
    assert settle(CollectionOp("list_delete_index", 0), current, "l") == CollectionOp("delete_paths", [b"p0" * 8])
    with pytest.raises(InvalidRequest, match="List index 3 out of bound, list has size 3"):
        settle(CollectionOp("list_put_index", 9, 3), current, "l")
