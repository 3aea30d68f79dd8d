"""ring/cql/prepare.py against a schema built with engine.schema: bind specs, pk_indexes, result
columns, Cassandra's refusals, prepared ids, the LRU cache, and plans the engine's own builders accept."""
import dataclasses

import pytest

from engine import mutation
from engine.errors import InvalidRequest
from engine.schema import IndexMetadata, Keyspace, make_table
from ring.cql.prepare import PreparedCache, prepare, prepared_id
from ring.cql.select_rules import FILTERING

T = make_table("ks", "t", {"k": "int", "c": "int", "d": "text", "v": "text", "w": "bigint"}, ("k", "c", "d"),
               {"c": "DESC"})
U = dataclasses.replace(make_table("ks", "u", {"a": "text", "b": "int", "x": "int"}, (("a", "b"),)),
                        indexes=(IndexMetadata("u_x", "x"),))
SCHEMA = {"ks": Keyspace("ks", tables={"t": T, "u": U})}


def specs(p):
    return [(s.keyspace, s.table, s.name, str(s.type)) for s in p.bind]


def test_bind_specs_and_pk_indexes():
    p = prepare("INSERT INTO t (c, k, d, v) VALUES (?, ?, ?, :val) USING TTL ? AND TIMESTAMP ?", "ks", SCHEMA)
    assert [s[2:] for s in specs(p)] == [("c", "int"), ("k", "int"), ("d", "text"), ("val", "text"),
                                         ("[ttl]", "int"), ("[timestamp]", "bigint")]
    assert p.pk_indexes == (1,) and p.result_columns == ()
    p = prepare("SELECT * FROM ks.u WHERE b = ? AND a = ? LIMIT ?", None, SCHEMA)
    assert specs(p) == [("ks", "u", "b", "int"), ("ks", "u", "a", "text"), ("ks", "u", "[limit]", "int")]
    assert p.pk_indexes == (1, 0)
    assert [c.name for c in p.result_columns] == ["a", "b", "x"]
    p = prepare("SELECT token(a, b) AS t, x FROM u WHERE token(a, b) > ? AND token(a, b) <= ?", "ks", SCHEMA)
    assert [s[2:] for s in specs(p)] == [("partition key token", "bigint")] * 2 and p.pk_indexes == ()
    assert [(c.name, str(c.type)) for c in p.result_columns] == [("t", "bigint"), ("x", "int")]
    p = prepare("SELECT v FROM t WHERE k IN ? AND c = 1 AND d = 'x'", "ks", SCHEMA)
    assert specs(p)[0][2:] == ("in(k)", "list<int>")


def test_prepared_ids_are_md5_of_keyspace_and_query():
    import hashlib
    q = "SELECT * FROM t WHERE k = ?"
    assert prepare(q, "ks", SCHEMA).query_id == hashlib.md5(b"ks" + q.encode()).digest() == prepared_id(q, "ks")
    assert prepared_id(q, None) == hashlib.md5(q.encode()).digest()


def test_cache_is_bounded_lru_and_invalidates():
    cache = PreparedCache(max_entries=2)
    a = cache.prepare("SELECT * FROM t", "ks", SCHEMA)
    b = cache.prepare("SELECT * FROM u", "ks", SCHEMA)
    assert cache.get(a.query_id) is a                      # a is now the most recent
    cache.prepare("SELECT v FROM t", "ks", SCHEMA)
    assert cache.get(b.query_id) is None and len(cache) == 2
    cache.invalidate("ks", "t")
    assert len(cache) == 0


@pytest.mark.parametrize("query, message", [
    ("SELECT * FROM t WHERE v = 'a'", FILTERING),
    ("SELECT * FROM t WHERE c = 1", FILTERING),
    ("SELECT * FROM u WHERE a = 'x'", FILTERING),
    ("SELECT * FROM nope", "table nope does not exist"),
    ("SELECT * FROM zz.t", "Keyspace zz does not exist"),
    ("SELECT nope FROM t", "Undefined column name nope"),
    ("INSERT INTO t (k, c, v) VALUES (1, 2, 'x')", "Some clustering key parts are missing: d"),
    ("INSERT INTO t (k, c, d, v) VALUES ('a', 1, 'd', 'b')", 'Invalid STRING constant (a) for "k" of type int'),
    ("INSERT INTO t (k, c, d, v) VALUES (1, 2, 'd', 3)", 'Invalid INTEGER constant (3) for "v" of type text'),
    ("INSERT INTO t (k, c, d, w) VALUES (1, 2, 'd', 99999999999999999999)", "bigint"),
    ("SELECT * FROM t ORDER BY c", "ORDER BY is only supported when the partition key is restricted"),
    ("SELECT * FROM t WHERE k = 1 ORDER BY d DESC", "following their declared order"),
    ("SELECT * FROM t WHERE k = 1 ORDER BY v DESC", "only supported on the clustered columns"),
    ("SELECT * FROM t WHERE k = 1 AND d = 'x'", 'PRIMARY KEY column "d" cannot be restricted'),
    ("SELECT * FROM t WHERE k = 1 AND c > 1 AND d = 'x'", "cannot be restricted"),
    ("SELECT * FROM t LIMIT 0", "LIMIT must be strictly positive"),
    ("SELECT DISTINCT v FROM t", "SELECT DISTINCT queries must only request partition key columns"),
    ("SELECT writetime(k) FROM t", "Cannot use selection function writetime on PRIMARY KEY part k"),
    ("SELECT * FROM u WHERE token(b, a) > 0", "partition key order: a, b"),
    ("UPDATE t SET k = 1 WHERE k = 1 AND c = 1 AND d = 'x'", "PRIMARY KEY part k found in SET part"),
    ("UPDATE t SET v = 'a' WHERE c = 1 AND d = 'x'", "Some partition key parts are missing: k"),
    ("DELETE k FROM t WHERE k = 1", "Invalid identifier k for deletion"),
    ("INSERT INTO t (k, c, d) VALUES (1, 2, 'x') IF NOT EXISTS USING TIMESTAMP 1", "custom timestamp for conditional"),
    ("SELECT * FROM t", None),
    ("CREATE TABLE t2 (k int PRIMARY KEY, s counter)", "type counter is not supported by the storage engine"),
    ("CREATE KEYSPACE k2 WITH durable_writes = true", "Missing mandatory option 'class'"),
])
def test_invalid_requests_in_cassandra_words(query, message):
    if message is None:
        prepare(query, "ks", SCHEMA)
        return
    with pytest.raises(InvalidRequest) as e:
        prepare(query, "ks", SCHEMA)
    assert message in str(e.value)


def test_no_keyspace():
    with pytest.raises(InvalidRequest, match="No keyspace has been specified"):
        prepare("SELECT * FROM t", None, SCHEMA)


def _ops(query, values=()):
    return prepare(query, "ks", SCHEMA).plan.operations(list(values))


def test_plans_feed_the_engine_builders():
    """The ops' args go straight into engine.mutation's builders (what the node's handlers call)."""
    ((op, args),) = _ops("INSERT INTO t (k, c, d, v) VALUES (?, ?, ?, ?) USING TTL 60", [1, 2, "x", "hi"])
    assert op == "insert" and args["ttl"] == 60
    key, update = mutation.build_insert(T, args["row"], 10, 0, args["ttl"], 1 << 20)
    assert key == mutation.partition_key_bytes(T, {"k": 1})
    ops = _ops("DELETE FROM t USING TIMESTAMP 7 WHERE k IN (1, 2) AND c = 3 AND d >= 'a' AND d < 'm'")
    assert [a["key"]["k"] for _, a in ops] == [1, 2] and all(a["timestamp"] == 7 for _, a in ops)
    args = ops[0][1]
    assert (args["start"], args["end"], args["start_inclusive"], args["end_inclusive"]) == ((3, "a"), (3, "m"), True, False)
    mutation.build_delete(T, args["key"], 7, 0, None, args["start"], args["end"], True, False)
    # c is DESC: `c > 5` is a bound that comes *before* 5 in storage order
    ((_, args),) = _ops("SELECT v FROM t WHERE k = 1 AND c > 5")
    assert args["end"] == (5,) and args["end_inclusive"] is False and "start" not in args
    lo, hi = mutation.slice_bounds(T, args.get("start"), args["end"], True, False)
    assert lo == b"" and hi == mutation.clustering_prefix(T, (5,))
    ((_, args),) = _ops("SELECT * FROM t WHERE k = 1 ORDER BY c ASC LIMIT 3")
    assert args["reverse"] is True and args["limit"] == 3
    ((op, args),) = _ops("SELECT * FROM u WHERE token(a, b) >= 10 AND token(a, b) < 20")
    assert (op, args["start_token"], args["end_token"]) == ("scan", 9, 19)
    ((op, args),) = _ops("SELECT * FROM u WHERE x = ?", [4])
    assert (op, args["where"]) == ("index_query", [["x", "=", 4]])
    ((op, args),) = _ops("CREATE TABLE t3 (a int, b timestamp, c text, PRIMARY KEY ((a), b)) WITH CLUSTERING "
                         "ORDER BY (b DESC) AND comment = 'x' AND default_time_to_live = 5")
    table = make_table(args["keyspace"], args["name"], args["columns"], args["primary_key"],
                       args["clustering_order"], args["options"])
    assert table.clustering[0].descending and table.option("default_time_to_live") == 5
    ((op, args),) = _ops("CREATE KEYSPACE k2 WITH replication = {'class': 'org.apache.cassandra.locator."
                         "NetworkTopologyStrategy', 'dc1': '3'}")
    assert args["replication"] == {"class": "NetworkTopologyStrategy", "dc1": 3}


def test_batch_and_literals():
    ops = _ops("BEGIN UNLOGGED BATCH USING TIMESTAMP 5 INSERT INTO t (k, c, d, w) VALUES (1, 2, 'a', -3); "
               "UPDATE t SET v = NULL WHERE k = 1 AND c = 2 AND d = 'a' APPLY BATCH")
    assert ops == [("insert", {"keyspace": "ks", "table": "t", "row": {"k": 1, "c": 2, "d": "a", "w": -3}, "timestamp": 5}),
                   ("insert", {"keyspace": "ks", "table": "t", "row": {"k": 1, "c": 2, "d": "a", "v": None}, "timestamp": 5})]
