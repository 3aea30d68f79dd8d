"""ring/cql/parser.py: a table of real statements (CQL reference, cqlsh and drivers on connect),
Cassandra-style error positions, and hypothesis round trips AST -> text -> AST."""
import dataclasses

import pytest
from hypothesis import given, strategies as st

from engine.errors import InvalidRequest
from ring.cql import ast
from ring.cql.lexer import RESERVED, CqlSyntaxError, tokenize
from ring.cql.parser import parse
from ring.cql.render import render
from ring.cql.types import CqlType

STATEMENTS = [
    # what cassandra-driver and cqlsh send on connect (specs/cql.md 2.1, 3)
    "SELECT * FROM system.peers_v2",
    "SELECT * FROM system.local WHERE key='local'",
    "select * from system.local where key = 'local'",
    "SELECT peer, host_id, rpc_address, schema_version FROM system.peers",
    "SELECT host_id, peer, peer_port, native_address, native_port, schema_version FROM system.peers_v2",
    "SELECT schema_version FROM system.local WHERE key='local'",
    "SELECT * FROM system_schema.keyspaces",
    "SELECT * FROM system_schema.tables WHERE keyspace_name = 'ks' AND table_name = 't2'",
    "SELECT * FROM system_schema.views WHERE keyspace_name = 'ks' AND view_name = 't2'",
    "SELECT * from system_virtual_schema.keyspaces",
    "USE ks;", 'USE "ks"', 'USE "MyKs"',
    # the CQL reference
    "CREATE KEYSPACE excelsior WITH replication = {'class': 'SimpleStrategy', 'replication_factor' : 3};",
    "CREATE KEYSPACE excalibur WITH replication = {'class': 'NetworkTopologyStrategy', 'DC1' : 1, 'DC2' : 3}"
    " AND durable_writes = false;",
    "CREATE SCHEMA IF NOT EXISTS ks WITH replication = {'class': 'org.apache.cassandra.locator.SimpleStrategy', "
    "'replication_factor': '1'}",
    "DROP KEYSPACE IF EXISTS excelsior", "DROP SCHEMA ks",
    "CREATE TABLE monkey_species (species text PRIMARY KEY, common_name text, population varint, "
    "average_size int) WITH comment='Important biological records';",
    "CREATE TABLE timeline (userid uuid, posted_month int, posted_time uuid, body text, posted_by text, "
    "PRIMARY KEY (userid, posted_month, posted_time)) WITH compaction = { 'class' : 'LeveledCompactionStrategy' };",
    "CREATE TABLE loads (machine inet, cpu int, mtime timeuuid, load float, PRIMARY KEY ((machine, cpu), mtime))"
    " WITH CLUSTERING ORDER BY (mtime DESC);",
    "CREATE TABLE IF NOT EXISTS t (a smallint, b tinyint, c date, d time, e inet, f frozen<list<int>>, "
    "g frozen<map<text, frozen<set<int>>>>, h tuple<int, text>, i decimal, j blob, k boolean, l double, "
    "m timestamp, n varchar, o ascii, p bigint, PRIMARY KEY (a, b, c)) WITH CLUSTERING ORDER BY (b ASC, c DESC)"
    " AND gc_grace_seconds = 0 AND bloom_filter_fp_chance = 0.1 AND caching = {'keys': 'ALL'}",
    "CREATE COLUMNFAMILY ks.t (k int, PRIMARY KEY (k),)",
    "DROP TABLE IF EXISTS ks.t", "DROP COLUMNFAMILY t", "TRUNCATE superImportantData;", "TRUNCATE TABLE ks.t",
    "CREATE INDEX userIndex ON NerdMovies (user);", "CREATE INDEX ON Mutants (abilityId);",
    "CREATE INDEX IF NOT EXISTS i ON ks.t (v)", "CREATE CUSTOM INDEX ON t (v) USING 'StorageAttachedIndex'",
    "DROP INDEX userIndex;", "DROP INDEX IF EXISTS ks.i",
    # ALTER and DESCRIBE (Cassandra 4/5)
    "ALTER TABLE addamsFamily ADD gravesite varchar;", "ALTER TABLE ks.t ADD IF NOT EXISTS (a int, b set<text>)",
    "ALTER TABLE addamsFamily DROP gravesite;", "ALTER TABLE IF EXISTS t DROP IF EXISTS (a, b) USING TIMESTAMP 5",
    "ALTER TABLE t RENAME IF EXISTS c TO d AND e TO f", "ALTER COLUMNFAMILY t WITH comment = 'x' AND gc_grace_seconds = 1",
    "ALTER KEYSPACE excelsior WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 4};",
    "ALTER SCHEMA IF EXISTS ks WITH durable_writes = false",
    "DESCRIBE KEYSPACES;", "DESC TABLES", "DESCRIBE FULL SCHEMA", "DESCRIBE SCHEMA", "DESCRIBE CLUSTER",
    "DESCRIBE KEYSPACE ks", "DESCRIBE ONLY KEYSPACE ks WITH INTERNALS", "DESC KEYSPACE", "DESCRIBE TABLE ks.t",
    "DESCRIBE COLUMNFAMILY t", "DESCRIBE INDEX ks.i", "DESC ks", "DESCRIBE ks.t", "DESCRIBE TYPES",
    "INSERT INTO NerdMovies (movie, director, main_actor, year) VALUES ('Serenity', 'Joss Whedon', "
    "'Nathan Fillion', 2005) USING TTL 86400;",
    "INSERT INTO t (k, v) VALUES (1, 'a') IF NOT EXISTS",
    "INSERT INTO t (k, v) VALUES (?, ?) USING TIMESTAMP ? AND TTL ?",
    "INSERT INTO t (k, b, u, f, d, n, s, l, m, tu) VALUES (-1, 0xCAFE, 00000000-0000-0000-0000-000000000007, "
    "-1.5e3, NaN, -Infinity, $$a 'quoted' $$, [1, 2], {'a': 1}, (1, 'x'))",
    "INSERT INTO t (a, b, c) VALUES (True, NULL, 'o''k')",
    "INSERT INTO t (k, v) VALUES (:k, :v)",
    "UPDATE NerdMovies USING TTL 400 SET director = 'Joss Whedon', main_actor = 'Nathan Fillion', year = 2005 "
    "WHERE movie = 'Serenity';",
    "UPDATE t USING TIMESTAMP 1 AND TTL 2 SET v = ? WHERE k = ? AND c = ? IF v = 3 AND w > 1",
    "UPDATE t SET v = null WHERE k IN (1, 2) IF EXISTS",
    "DELETE FROM NerdMovies USING TIMESTAMP 1240003134 WHERE movie = 'Serenity';",
    "DELETE phone FROM Users WHERE userid IN (C73DE1D3-AF08-40F3-B124-3FF3E5109F22, "
    "B70DE1D0-9908-4AE3-BE34-5573E5B09F14);",
    "DELETE FROM t WHERE k = 1 AND c > 2 AND c <= 5",
    "BEGIN BATCH INSERT INTO users (userid, password, name) VALUES ('user2', 'ch@ngem3b', 'second user'); "
    "UPDATE users SET password = 'ps22dhds' WHERE userid = 'user3'; INSERT INTO users (userid, password) "
    "VALUES ('user4', 'ch@ngem3c'); DELETE name FROM users WHERE userid = 'user1'; APPLY BATCH;",
    "BEGIN UNLOGGED BATCH USING TIMESTAMP 5 INSERT INTO t (k) VALUES (1) APPLY BATCH",
    "BEGIN LOGGED BATCH APPLY BATCH",
    "SELECT name, occupation FROM users WHERE userid IN (199, 200, 207);",
    "SELECT JOIN_DATE AS since FROM users WHERE userid = 199",
    "SELECT time, value FROM events WHERE event_type = 'myEvent' AND time > '2011-02-03' "
    "AND time <= '2012-01-01'",
    "SELECT COUNT(*) AS user_count FROM users;", "SELECT count(1) FROM t",
    "SELECT DISTINCT k FROM t", "SELECT distinct FROM t", "SELECT distinct, ttl FROM t",
    "SELECT writetime(v), ttl(v), token(k) FROM t WHERE token(k) > ? AND token(k) <= ?",
    "SELECT * FROM posts WHERE userid = 'john doe' AND blog_title='John''s Blog' ORDER BY posted_at DESC, "
    "entry_title ASC PER PARTITION LIMIT 2 LIMIT 10 ALLOW FILTERING",
    "SELECT key, type, values, filtering, partition, timestamp, count, writetime FROM t LIMIT ?",
    "SELECT * FROM t WHERE k IN ? AND c >= :lo",
    "select * from t -- a comment\n where /* another */ k = 1 // and a third",
    'SELECT "Quoted ""Name""", "select" FROM "T"',
    "UPDATE t SET l = l + [1, 2], s = s - {'a'}, m[?] = ?, p = [0] + p WHERE k = 1",
    "DELETE m['a'], l[0], v FROM t WHERE k = 1",
    "INSERT INTO t JSON '{\"k\": 1}' DEFAULT UNSET USING TTL 5",
    "INSERT INTO t JSON ?",
    "SELECT JSON k, v AS x FROM t WHERE k = 1",
    "INSERT INTO t (k, d) VALUES (1, 1h30m)",
]


@pytest.mark.parametrize("query", STATEMENTS)
def test_real_statements_parse_and_round_trip(query):
    statement, count = parse(query)
    assert isinstance(statement, ast.Statement)
    again, count2 = parse(render(statement))
    assert _strip(again) == _strip(statement) and count2 == count


def test_details():
    s, n = parse("INSERT INTO t (k, v) VALUES (?, :v) USING TTL ?")
    assert s.values == (ast.BindMarker(0), ast.BindMarker(1, "v")) and s.ttl == ast.BindMarker(2) and n == 3
    s, _ = parse("UPDATE t USING TIMESTAMP ? AND TTL ? SET v = ? WHERE k = ?")
    assert s.timestamp == ast.BindMarker(0) and s.ttl == ast.BindMarker(1)
    s, _ = parse('SELECT "Foo", Bar FROM Ks."Tab"')
    assert [x.expression.name for x in s.selectors] == ["Foo", "bar"] and (s.keyspace, s.table) == ("ks", "Tab")
    s, _ = parse("CREATE TABLE t (a int, b frozen<map<text, list<int>>>, PRIMARY KEY ((a, b)))")
    assert s.partition_key == ("a", "b") and s.columns[1].type == CqlType(
        "map", (CqlType("text"), CqlType("list", (CqlType("int"),))), True)
    s, _ = parse("SELECT * FROM t WHERE k = 'it''s' AND u = 0x0aFF AND f = -Infinity AND d = 1.5E-3")
    assert [r.value for r in s.where] == [ast.Constant("string", "it's"), ast.Constant("hex", "0aff"),
                                          ast.Constant("float", "-Infinity"), ast.Constant("float", "1.5e-3")]
    assert parse("SELECT distinct FROM t")[0].selectors == (ast.Selector(ast.ColumnRef("distinct")),)
    assert parse("SELECT DISTINCT k FROM t")[0].distinct


@pytest.mark.parametrize("query, message", [
    ("SELECT FROM t", "line 1:7 no viable alternative at input 'FROM' (SELECT [FROM] t)"),
    ("SELECT * FROM t WHERE", "line 1:21 no viable alternative at input '<EOF>'"),
    ("INSERT INTO t (a) VALUE (1)", "line 1:18 mismatched input 'VALUE' expecting K_VALUES"),
    ("SELECT * FROM t x", "line 1:16 mismatched input 'x' expecting EOF"),
    ("SELECT *\nFROM t\nWHERE k == 1", "line 3:9 no viable alternative at input '='"),
    ("SELECT # FROM t", "line 1:7 token recognition error at: '#'"),
    ("SELECT * FROM t WHERE k = 'open", "line 1:26 unterminated string literal"),
    ("CREATE TABLE select (k int PRIMARY KEY)", "line 1:13 no viable alternative at input 'select'"),
    ("FROBNICATE", "line 1:0 no viable alternative at input 'FROBNICATE'"),
    ("CREATE TABLE t (k int PRIMARY KEY) WITH CLUSTERING ORDER BY (c UP)", "expecting K_ASC or K_DESC"),
])
def test_syntax_errors_name_the_position(query, message):
    with pytest.raises(CqlSyntaxError) as e:
        parse(query)
    assert message in str(e.value)
    assert str(e.value).startswith(f"line {e.value.line}:{e.value.column} ")


@pytest.mark.parametrize("query", [
    "SELECT * FROM t WHERE (a, b) > (1, 2)", "UPDATE t SET c += 1 WHERE k = 1",
    "SELECT * FROM t GROUP BY k", "SELECT max(v) FROM t",
    "CREATE TABLE t (k my_udt PRIMARY KEY)", "CREATE TABLE t (k int, PRIMARY KEY (k), PRIMARY KEY (k))",
])
def test_unsupported_constructs_say_so(query):
    with pytest.raises(InvalidRequest) as e:
        parse(query)
    assert not isinstance(e.value, CqlSyntaxError)


def test_lexer_positions_and_literals():
    toks = tokenize("SELECT\n  \"a\"\"b\", 12345678-aaaa-bbbb-cccc-1234567890ab, 0x, 1.")
    assert [(t.kind, t.value, t.line, t.column) for t in toks[:3]] == [
        ("WORD", "select", 1, 0), ("QNAME", 'a"b', 2, 2), ("SYMBOL", ",", 2, 8)]
    assert [t.kind for t in toks[3:]] == ["UUID", "SYMBOL", "HEX", "SYMBOL", "FLOAT", "EOF"]
    assert {"key", "ttl", "timestamp", "count", "writetime", "type", "distinct"}.isdisjoint(RESERVED)


# -- hypothesis: generate an AST, render it, parse it back -----------------------------------------

_names = st.one_of(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                   st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=6),
                   st.sampled_from(["key", "ttl", "select", "Mixed", "count", "token", "from"]))
_constants = st.one_of(
    st.builds(ast.Constant, st.just("string"), st.text(st.characters(codec="utf-8"), max_size=10)),
    st.integers(-2**70, 2**70).map(lambda i: ast.Constant("integer", str(i))),
    st.sampled_from(["1.5", "-0.0", "1e10", "2.5e-3", "NaN", "-Infinity"]).map(lambda t: ast.Constant("float", t)),
    st.sampled_from(["true", "false"]).map(lambda t: ast.Constant("boolean", t)),
    st.uuids().map(lambda u: ast.Constant("uuid", str(u))),
    st.binary(max_size=8).map(lambda b: ast.Constant("hex", b.hex())),
    st.just(ast.Null()))
_plain_terms = st.recursive(_constants, lambda inner: st.one_of(
    st.lists(inner, max_size=3).map(lambda x: ast.ListLiteral(tuple(x))),
    st.lists(inner, min_size=1, max_size=3).map(lambda x: ast.SetLiteral(tuple(x))),
    st.lists(st.tuples(inner, inner), max_size=3).map(lambda x: ast.MapLiteral(tuple(x))),
    st.lists(inner, min_size=1, max_size=3).map(lambda x: ast.TupleLiteral(tuple(x)))), max_leaves=6)
_terms = st.one_of(_plain_terms, st.just(ast.BindMarker(-1)), _names.map(lambda n: ast.BindMarker(-1, n)))
_ints = st.one_of(st.integers(0, 10**6).map(lambda i: ast.Constant("integer", str(i))), st.just(ast.BindMarker(-1)))
_ops = st.sampled_from(["=", "<", "<=", ">", ">=", "!="])
_relations = st.one_of(
    st.builds(ast.Relation, _names, _ops, _terms),
    st.builds(ast.Relation, _names, st.just("IN"),
              st.one_of(st.lists(_terms, max_size=3).map(lambda x: ast.InValues(tuple(x))), st.just(ast.BindMarker(-1)))),
    st.builds(ast.TokenRelation, st.lists(_names, min_size=1, max_size=2).map(tuple),
              st.sampled_from(["=", "<", "<=", ">", ">="]), _terms))
_expressions = st.one_of(st.builds(ast.ColumnRef, _names), st.builds(ast.WriteTime, _names), st.builds(ast.Ttl, _names),
                         st.builds(ast.TokenOf, st.lists(_names, min_size=1, max_size=2).map(tuple)),
                         st.sampled_from(["*", "1"]).map(ast.CountRows))
_selects = st.builds(
    ast.Select, st.none() | _names, _names,
    st.none() | st.lists(st.builds(ast.Selector, _expressions, st.none() | _names), min_size=1, max_size=3).map(tuple),
    st.lists(_relations, max_size=3).map(tuple), st.booleans(),
    st.lists(st.tuples(_names, st.sampled_from(["ASC", "DESC"])), max_size=2).map(tuple),
    st.none() | _ints, st.none() | _ints, st.booleans())
_inserts = st.integers(1, 3).flatmap(lambda n: st.builds(
    ast.Insert, st.none() | _names, _names, st.lists(_names, min_size=n, max_size=n).map(tuple),
    st.lists(_terms, min_size=n, max_size=n).map(tuple), st.booleans(), st.none() | _ints, st.none() | _ints))
_conditions = st.lists(st.builds(ast.Condition, _names, _ops, _terms), max_size=2).map(tuple)
_updates = st.builds(ast.Update, st.none() | _names, _names,
                     st.lists(st.tuples(_names, _terms), min_size=1, max_size=3).map(tuple),
                     st.lists(_relations, min_size=1, max_size=3).map(tuple), st.none() | _ints, st.none() | _ints,
                     st.just(False), _conditions)
_deletes = st.builds(ast.Delete, st.none() | _names, _names, st.lists(_names, max_size=2).map(tuple),
                     st.lists(_relations, min_size=1, max_size=2).map(tuple), st.none() | _ints, st.booleans(),
                     st.just(()))
_types = st.recursive(st.sampled_from(["int", "text", "bigint", "smallint", "date", "inet", "blob"]).map(CqlType),
                      lambda inner: st.one_of(st.builds(lambda t: CqlType("list", (t,), True), inner),
                                              st.builds(lambda k, v: CqlType("map", (k, v), True), inner, inner)),
                      max_leaves=3)


@st.composite
def _create_tables(draw):
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    cols = tuple(ast.ColumnDefinition(n, draw(_types)) for n in names)
    pk_n = draw(st.integers(1, len(names)))
    props = draw(st.lists(st.tuples(_names, _constants.filter(lambda c: not isinstance(c, ast.Null))), max_size=2))
    order = tuple((n, draw(st.sampled_from(["ASC", "DESC"]))) for n in names[pk_n:])
    return ast.CreateTable(draw(st.none() | _names), draw(_names), cols, tuple(names[:pk_n]), tuple(names[pk_n:]),
                           draw(st.booleans()), order, tuple(props))


_statements = st.one_of(_selects, _inserts, _updates, _deletes, _create_tables(),
                        st.builds(ast.Batch, st.sampled_from(["LOGGED", "UNLOGGED"]),
                                  st.lists(st.one_of(_inserts, _updates, _deletes), max_size=3).map(tuple),
                                  st.none() | _ints),
                        st.builds(ast.Use, _names), st.builds(ast.DropTable, st.none() | _names, _names, st.booleans()),
                        st.builds(ast.Truncate, st.none() | _names, _names))


def _strip(node):
    """Bind markers without their positions (rendering may reorder USING TTL / TIMESTAMP)."""
    if isinstance(node, ast.BindMarker):
        return ast.BindMarker(-1, node.name)
    if isinstance(node, tuple):
        return tuple(_strip(x) for x in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, CqlType):
        return dataclasses.replace(node, **{f.name: _strip(getattr(node, f.name)) for f in dataclasses.fields(node)})
    return node


def _markers(node) -> list:
    if isinstance(node, ast.BindMarker):
        return [node]
    if isinstance(node, tuple):
        return [m for x in node for m in _markers(x)]
    if dataclasses.is_dataclass(node) and not isinstance(node, CqlType):
        return [m for f in dataclasses.fields(node) for m in _markers(getattr(node, f.name))]
    return []


@given(_statements)
def test_render_then_parse_gives_the_same_ast(statement):
    text = render(statement)
    parsed, count = parse(text)
    assert _strip(parsed) == statement
    assert sorted(m.index for m in _markers(parsed)) == list(range(count)) and count == len(_markers(statement))
