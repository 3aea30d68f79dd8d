"""ring/cql/execute.py: CQL text through the executor on a 3-node simulated cluster (virtual time)."""
import pytest

from engine.mutation import partition_key_bytes
from engine.token import token as token_of
from ring.cql import paging
from ring.cql.responses import AlreadyExists, Error, ErrorCode, ReadTimeout, Unavailable, Unprepared, WriteTimeout
from ring.cql.result import Prepared, Rows, SchemaChangeResult, SetKeyspace, Void
from ring.cql.types import parse_type
from ring.runtime.sim import Simulation
from tests.cql.cql_sim import CqlSim, decode, encode

FAST = {"gossip_interval_ms": 200, "phi_convict_threshold": 4.0}
INT, TEXT = parse_type("int"), parse_type("text")


def cluster(options=FAST) -> CqlSim:
    sim = Simulation(7, node_options=options)
    sim.run_for(3000)
    c = CqlSim(sim)
    c.ok("n1", "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    c.ok("n1", "CREATE TABLE ks.t (k int, c int, v text, w int, PRIMARY KEY (k, c))")
    c.agree()
    return c


@pytest.fixture
def cql():
    c = cluster()
    yield c
    c.sim.close()


def fill(c, partitions=5, rows=4):
    for k in range(partitions):
        for i in range(rows):
            c.ok(f"n{k % 3 + 1}", f"INSERT INTO ks.t (k, c, v, w) VALUES ({k}, {i}, 'v{k}{i}', {k * 10 + i})",
                 consistency="QUORUM")


def error(response) -> tuple:
    assert isinstance(response, Error), response
    return response.code, response.message


def test_ddl_answers_schema_changes_and_already_exists(cql):
    r = cql.run("n2", "CREATE KEYSPACE ks2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
    assert isinstance(r, SchemaChangeResult) and (r.change.change_type, r.change.target, r.change.keyspace) == (
        "CREATED", "KEYSPACE", "ks2")
    assert cql.events[-1] == r.change                       # the EVENT the server pushes
    again = cql.run("n2", "CREATE KEYSPACE ks2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
    assert isinstance(again, AlreadyExists) and (again.code, again.keyspace, again.table) == (
        ErrorCode.ALREADY_EXISTS, "ks2", "")
    assert isinstance(cql.run("n2", "CREATE KEYSPACE IF NOT EXISTS ks2 WITH replication = "
                                    "{'class': 'SimpleStrategy', 'replication_factor': 1}"), Void)
    assert isinstance(cql.run("n2", "USE ks2"), SetKeyspace) and cql.session("n2").keyspace == "ks2"
    r = cql.run("n2", "CREATE TABLE t2 (k int PRIMARY KEY, v text)")
    assert (r.change.change_type, r.change.target, r.change.keyspace, r.change.name) == ("CREATED", "TABLE", "ks2", "t2")
    dup = cql.run("n2", "CREATE TABLE t2 (k int PRIMARY KEY, v text)")
    assert isinstance(dup, AlreadyExists) and (dup.keyspace, dup.table) == ("ks2", "t2")
    assert isinstance(cql.run("n2", "CREATE TABLE IF NOT EXISTS t2 (k int PRIMARY KEY)"), Void)
    cql.ok("n2", "INSERT INTO t2 (k, v) VALUES (1, 'a')")
    assert cql.rows("n2", "SELECT * FROM t2") == [(1, "a")]
    r = cql.run("n2", "CREATE INDEX t2_v ON t2 (v)")
    assert (r.change.change_type, r.change.target, r.change.name) == ("UPDATED", "TABLE", "t2")
    assert cql.run("n2", "DROP INDEX t2_v").change.name == "t2"
    assert error(cql.run("n2", "DROP TABLE nope"))[0] == ErrorCode.INVALID
    assert isinstance(cql.run("n2", "DROP TABLE IF EXISTS nope"), Void)
    assert cql.run("n2", "DROP TABLE t2").change.change_type == "DROPPED"
    assert cql.run("n1", "DROP KEYSPACE ks2").change.target == "KEYSPACE"
    assert isinstance(cql.run("n1", "DROP KEYSPACE IF EXISTS ks2"), Void)
    assert error(cql.run("n1", "USE nope")) == (ErrorCode.INVALID, "Keyspace 'nope' does not exist")
    assert isinstance(cql.run("n3", "TRUNCATE ks.t"), Void)     # served now: tests/cql/test_truncate.py


def test_writes_with_ttl_timestamps_updates_and_deletes(cql):
    cql.ok("n1", "INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'a') USING TIMESTAMP 1000", consistency="ALL")
    cql.ok("n2", "INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'older') USING TIMESTAMP 999", consistency="ALL")
    assert cql.rows("n3", "SELECT v, writetime(v) FROM ks.t WHERE k = 1 AND c = 1", consistency="ALL") == [("a", 1000)]
    # the protocol's default timestamp is the write timestamp unless the statement says USING TIMESTAMP
    cql.ok("n2", "UPDATE ks.t SET v = 'b' WHERE k = 1 AND c = 1", consistency="ALL", timestamp=2000)
    assert cql.rows("n1", "SELECT v, writetime(v) FROM ks.t WHERE k = 1 AND c = 1", consistency="ALL") == [("b", 2000)]
    cql.ok("n1", "INSERT INTO ks.t (k, c, v) VALUES (2, 1, 'ttl') USING TTL 5", consistency="ALL")
    assert cql.rows("n2", "SELECT v FROM ks.t WHERE k = 2", consistency="ALL") == [("ttl",)]
    cql.sim.run_for(6000)
    assert cql.rows("n2", "SELECT v FROM ks.t WHERE k = 2", consistency="ALL") == []
    fill(cql, partitions=3, rows=5)
    cql.ok("n1", "DELETE v FROM ks.t WHERE k = 0 AND c = 0", consistency="ALL")
    cql.ok("n1", "DELETE FROM ks.t WHERE k = 0 AND c = 1", consistency="ALL")
    cql.ok("n1", "DELETE FROM ks.t WHERE k = 0 AND c >= 3", consistency="ALL")
    cql.ok("n1", "DELETE FROM ks.t WHERE k = 2", consistency="ALL")
    assert cql.rows("n3", "SELECT c, v FROM ks.t WHERE k = 0", consistency="ALL") == [(0, None), (2, "v02")]
    assert cql.rows("n3", "SELECT * FROM ks.t WHERE k = 2", consistency="ALL") == []
    assert error(cql.run("n1", "INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'x') USING TTL -1"))[0] == ErrorCode.INVALID


def test_every_select_form(cql):
    fill(cql)
    q = lambda text, **kw: cql.rows("n2", text, consistency="QUORUM", **kw)  # noqa: E731
    assert q("SELECT * FROM ks.t WHERE k = 1") == [(1, i, f"v1{i}", 10 + i) for i in range(4)]
    assert q("SELECT v AS value, k FROM ks.t WHERE k = 1 AND c = 2") == [("v12", 1)]
    assert cql.ok("n2", "SELECT v AS value FROM ks.t WHERE k = 1 AND c = 2").metadata.columns[0].name == "value"
    assert q("SELECT c FROM ks.t WHERE k = 1 AND c > 0 AND c <= 2") == [(1,), (2,)]
    assert q("SELECT c FROM ks.t WHERE k = 1 ORDER BY c DESC LIMIT 2") == [(3,), (2,)]
    assert q("SELECT c FROM ks.t WHERE k IN (1, 2, 1) AND c < 2") == [(0,), (1,), (0,), (1,)]
    assert q("SELECT k, c FROM ks.t WHERE k IN (1, 2) ORDER BY c DESC LIMIT 3") == [(1, 3), (2, 3), (1, 2)]
    token = token_of(partition_key_bytes(cql.sim.nodes["n1"].store.table("ks", "t"), {"k": 3}))
    assert q("SELECT token(k), k FROM ks.t WHERE k = 3 LIMIT 1") == [(token, 3)]
    assert q("SELECT count(*) FROM ks.t") == [(20,)]
    assert q("SELECT COUNT(*) AS n FROM ks.t WHERE k = 4") == [(4,)]
    assert sorted(q("SELECT DISTINCT k FROM ks.t")) == [(k,) for k in range(5)]
    everything = q("SELECT k, c FROM ks.t")
    assert len(everything) == 20 and len(q("SELECT k FROM ks.t LIMIT 7")) == 7
    tokens = [token_of(partition_key_bytes(cql.sim.nodes["n1"].store.table("ks", "t"), {"k": k})) for k, _ in everything]
    assert tokens == sorted(tokens)                           # a scan answers in token order
    mid = sorted(set(tokens))[2]
    assert [t for t in tokens if t <= mid] == [token_of(partition_key_bytes(
        cql.sim.nodes["n1"].store.table("ks", "t"), {"k": k})) for k, in q(f"SELECT k FROM ks.t WHERE token(k) <= {mid}")]
    assert q("SELECT k, c FROM ks.t PER PARTITION LIMIT 1 LIMIT 3") == [(k, 0) for k, _ in everything[::4][:3]]
    assert q("SELECT k, c FROM ks.t WHERE w > 41 ALLOW FILTERING") == [(4, 2), (4, 3)]
    assert q("SELECT c FROM ks.t WHERE k = 2 AND w IN (21, 23) ALLOW FILTERING") == [(1,), (3,)]
    code, message = error(cql.run("n2", "SELECT * FROM ks.t WHERE w = 3"))
    assert code == ErrorCode.INVALID and "ALLOW FILTERING" in message
    cql.ok("n1", "CREATE INDEX ON ks.t (v)")
    cql.agree()
    cql.sim.run_for(2000)
    assert q("SELECT k, c FROM ks.t WHERE v = 'v32'") == [(3, 2)]


def pages(cql, query, page_size, nodes=("n1", "n2", "n3"), **kw):
    """Every page of `query`, each page asked of the next node."""
    out, state, i = [], None, 0
    while True:
        r = cql.ok(nodes[i % len(nodes)], query, page_size=page_size, paging_state=state, **kw)
        out.append(decode(r))
        state, i = r.metadata.paging_state, i + 1
        if state is None:
            return out


def test_paging_resumes_on_any_node(cql):
    fill(cql, partitions=6, rows=5)
    whole = cql.rows("n1", "SELECT * FROM ks.t", consistency="QUORUM")
    assert len(whole) == 30
    for size in (1, 4, 7, 30, 100):
        got = pages(cql, "SELECT * FROM ks.t", size, consistency="QUORUM")
        assert [r for p in got for r in p] == whole and all(len(p) <= size for p in got)
        assert all(len(p) == size for p in got[:-1])
    got = pages(cql, "SELECT c FROM ks.t WHERE k = 3 ORDER BY c DESC", 2)
    assert got == [[(4,), (3,)], [(2,), (1,)], [(0,)]]
    got = pages(cql, "SELECT k, c FROM ks.t WHERE k IN (5, 1) AND c >= 1", 3)
    assert [r for p in got for r in p] == [(5, c) for c in range(1, 5)] + [(1, c) for c in range(1, 5)]
    limited = pages(cql, "SELECT k, c FROM ks.t LIMIT 11", 4)
    assert [r for p in limited for r in p] == [(k, c) for k, c, _, _ in whole[:11]] and len(limited) == 3
    ppl = pages(cql, "SELECT k, c FROM ks.t PER PARTITION LIMIT 2", 3)
    assert [r for p in ppl for r in p] == [(k, c) for k, c, _, _ in whole if c < 2]
    filtered = pages(cql, "SELECT k, c FROM ks.t WHERE w >= 33 ALLOW FILTERING", 2)
    assert [r for p in filtered for r in p] == [(k, c) for k, c, _, w in whole if w >= 33]
    distinct = pages(cql, "SELECT DISTINCT k FROM ks.t", 4)
    assert [r for p in distinct for r in p] == list(dict.fromkeys((k,) for k, *_ in whole))


def test_paging_a_descending_clustering_in_both_orders(cql):
    cql.ok("n1", "CREATE TABLE ks.d (k int, c int, e text, v int, PRIMARY KEY (k, c, e)) "
                 "WITH CLUSTERING ORDER BY (c DESC, e ASC)")
    cql.agree()
    for c in range(4):
        for e in "ab":
            cql.ok("n2", f"INSERT INTO ks.d (k, c, e, v) VALUES (1, {c}, '{e}', {c})", consistency="ALL")
    declared = [(c, e) for c in (3, 2, 1, 0) for e in "ab"]
    for size in (1, 3, 5):
        got = pages(cql, "SELECT c, e FROM ks.d WHERE k = 1", size)
        assert [r for p in got for r in p] == declared
        got = pages(cql, "SELECT c, e FROM ks.d WHERE k = 1 ORDER BY c ASC, e DESC", size)
        assert [r for p in got for r in p] == declared[::-1]
        got = pages(cql, "SELECT c, e FROM ks.d WHERE k = 1 AND c > 0 AND c <= 2", size)
        assert [r for p in got for r in p] == [(2, "a"), (2, "b"), (1, "a"), (1, "b")]


def test_paging_state_is_checked(cql):
    fill(cql, partitions=3, rows=3)
    state = cql.ok("n1", "SELECT * FROM ks.t", page_size=2).metadata.paging_state
    assert state[:3] == b"DP\x01"
    flipped = state[:5] + bytes([state[5] ^ 1]) + state[6:]
    code, message = error(cql.run("n2", "SELECT * FROM ks.t", page_size=2, paging_state=flipped))
    assert code == ErrorCode.INVALID and "checksum mismatch" in message
    code, message = error(cql.run("n2", "SELECT k FROM ks.t", page_size=2, paging_state=state))
    assert code == ErrorCode.INVALID and "another statement" in message
    assert error(cql.run("n2", "SELECT * FROM ks.t", page_size=2, paging_state=b"junk"))[0] == ErrorCode.INVALID
    with pytest.raises(Exception, match="version 2"):
        paging.decode(state[:2] + b"\x02" + state[3:], state[4:12])


def test_prepared_statements_and_named_values(cql):
    p = cql.prepare("n1", "INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?) USING TTL ?")
    assert isinstance(p, Prepared) and p.pk_indexes == (0,) and [s.name for s in p.bind] == ["k", "c", "v", "[ttl]"]
    from ring.cql.notation import UNSET
    r = cql.execute("n1", p.query_id, values=[encode(INT, 9), encode(INT, 1), encode(TEXT, "x"), UNSET],
                    consistency="ALL")
    assert isinstance(r, Void)
    s = cql.prepare("n1", "SELECT v FROM ks.t WHERE k = :key AND c = :c")
    assert s.pk_indexes == (0,)
    r = cql.execute("n1", s.query_id, values=[encode(INT, 1), encode(INT, 9)], names=("c", "key"))
    assert decode(r) == [("x",)]
    missing = cql.execute("n2", s.query_id, values=[encode(INT, 9), encode(INT, 1)])
    assert isinstance(missing, Unprepared) and missing.query_id == s.query_id       # never prepared on n2
    wrong = cql.execute("n1", s.query_id, values=[encode(INT, 9)])
    assert error(wrong)[0] == ErrorCode.INVALID


def test_batches(cql):
    cql.ok("n1", "BEGIN UNLOGGED BATCH INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'a'); "
                 "UPDATE ks.t SET v = 'b' WHERE k = 2 AND c = 1; DELETE FROM ks.t WHERE k = 3 APPLY BATCH",
           consistency="QUORUM")
    p = cql.prepare("n2", "INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)")
    r = cql.batch("n2", [(p.query_id, [encode(INT, 4), encode(INT, 1), encode(TEXT, "d")]),
                         ("UPDATE ks.t SET w = 7 WHERE k = 1 AND c = 1", [])], consistency="QUORUM", timestamp=5)
    assert isinstance(r, Void)
    assert cql.rows("n3", "SELECT k, v, w, writetime(v) FROM ks.t", consistency="QUORUM") == sorted(
        [(1, "a", 7, cql.rows("n3", "SELECT writetime(v) FROM ks.t WHERE k = 1")[0][0]), (2, "b", None,
         cql.rows("n3", "SELECT writetime(v) FROM ks.t WHERE k = 2")[0][0]), (4, "d", None, 5)],
        key=lambda row: token_of(partition_key_bytes(cql.sim.nodes["n1"].store.table("ks", "t"), {"k": row[0]})))
    bad = cql.batch("n2", [("SELECT * FROM ks.t", [])])
    assert error(bad)[0] == ErrorCode.INVALID


def test_errors_carry_cassandra_codes():
    cql = cluster({"gossip_interval_ms": 1000, "phi_convict_threshold": 12.0})  # slow to convict
    assert error(cql.run("n1", "SELEC * FROM ks.t"))[0] == ErrorCode.SYNTAX_ERROR
    assert error(cql.run("n1", "SELECT * FROM ks.nope"))[0] == ErrorCode.INVALID
    assert error(cql.run("n1", "SELECT * FROM t"))[1].startswith("No keyspace has been specified")
    assert error(cql.run("n1", "INSERT INTO system.local (key) VALUES ('x')"))[0] == ErrorCode.INVALID
    cql.sim.pause("n2")
    cql.sim.pause("n3")                       # not yet convicted: the coordinator waits, then times out
    w = cql.run("n1", "INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'a')", consistency="QUORUM")
    assert isinstance(w, WriteTimeout) and (w.block_for, w.write_type) == (2, "SIMPLE") and w.received <= 1
    b = cql.run("n1", "BEGIN BATCH INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'a') APPLY BATCH", consistency="ALL")
    assert isinstance(b, WriteTimeout) and b.write_type == "UNLOGGED_BATCH"
    rt = cql.run("n1", "SELECT * FROM ks.t WHERE k = 1", consistency="ALL")
    assert isinstance(rt, ReadTimeout) and rt.block_for == 3
    cql.sim.run_for(60_000)                   # now convicted: Unavailable before anything is sent
    u = cql.run("n1", "INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'a')", consistency="QUORUM")
    assert isinstance(u, Unavailable) and (u.required, u.alive) == (2, 1)
    assert isinstance(cql.run("n1", "SELECT * FROM ks.t", consistency="ONE"), (Rows, Unavailable))
    cql.sim.close()


# -- the executor against an embedded Store (the model) ----------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from engine.store import Store  # noqa: E402

KEYS, CLUSTERINGS = st.integers(0, 3), st.integers(0, 5)
TIMESTAMPS = st.integers(1, 40)           # small: ties between writes and deletes happen
STATEMENTS = st.one_of(
    st.tuples(st.just("insert"), KEYS, CLUSTERINGS, st.text("ab", max_size=3), TIMESTAMPS),
    st.tuples(st.just("update"), KEYS, CLUSTERINGS, st.text("xy", max_size=3), TIMESTAMPS),
    st.tuples(st.just("delete_row"), KEYS, CLUSTERINGS, TIMESTAMPS),
    st.tuples(st.just("delete_cell"), KEYS, CLUSTERINGS, TIMESTAMPS),
    st.tuples(st.just("delete_range"), KEYS, CLUSTERINGS, TIMESTAMPS),
    st.tuples(st.just("delete_partition"), KEYS, TIMESTAMPS),
)


def as_cql(table: str, s) -> str:
    kind, k = s[0], s[1]
    if kind == "insert":
        return f"INSERT INTO ks.{table} (k, c, v) VALUES ({k}, {s[2]}, '{s[3]}') USING TIMESTAMP {s[4]}"
    if kind == "update":
        return f"UPDATE ks.{table} USING TIMESTAMP {s[4]} SET v = '{s[3]}' WHERE k = {k} AND c = {s[2]}"
    if kind == "delete_row":
        return f"DELETE FROM ks.{table} USING TIMESTAMP {s[3]} WHERE k = {k} AND c = {s[2]}"
    if kind == "delete_cell":
        return f"DELETE v FROM ks.{table} USING TIMESTAMP {s[3]} WHERE k = {k} AND c = {s[2]}"
    if kind == "delete_range":
        return f"DELETE FROM ks.{table} USING TIMESTAMP {s[3]} WHERE k = {k} AND c >= {s[2]}"
    return f"DELETE FROM ks.{table} USING TIMESTAMP {s[2]} WHERE k = {k}"


def apply_model(store: Store, table: str, s) -> None:
    kind, k = s[0], s[1]
    if kind in ("insert", "update"):
        store.insert("ks", table, {"k": k, "c": s[2], "v": s[3]}, timestamp=s[4])
    elif kind == "delete_row":
        store.delete("ks", table, {"k": k, "c": s[2]}, timestamp=s[3])
    elif kind == "delete_cell":
        store.delete("ks", table, {"k": k, "c": s[2]}, columns=["v"], timestamp=s[3])
    elif kind == "delete_range":
        store.delete("ks", table, {"k": k}, start=(s[2],), timestamp=s[3])
    else:
        store.delete("ks", table, {"k": k}, timestamp=s[2])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    c = cluster()
    store = Store.open(str(tmp_path_factory.mktemp("model")), background=False)
    store.create_keyspace("ks")
    yield c, store, iter(range(10_000))
    store.close()
    c.sim.close()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(statements=st.lists(STATEMENTS, max_size=25), nodes=st.lists(st.sampled_from(["n1", "n2", "n3"]),
                                                                     min_size=1, max_size=5))
def test_random_statements_match_an_embedded_store(model, statements, nodes):
    cql, store, numbers = model
    table = f"m{next(numbers)}"
    cql.ok("n1", f"CREATE TABLE ks.{table} (k int, c int, v text, PRIMARY KEY (k, c))")
    store.create_table("ks", table, {"k": "int", "c": "int", "v": "text"}, primary_key=("k", "c"))
    cql.agree()
    for i, s in enumerate(statements):
        cql.ok(nodes[i % len(nodes)], as_cql(table, s), consistency="ALL")
        apply_model(store, table, s)
    for k in range(4):
        expected = [(r["k"], r["c"], r.get("v")) for r in store.select("ks", table, {"k": k})]
        assert cql.rows(nodes[k % len(nodes)], f"SELECT * FROM ks.{table} WHERE k = {k}") == expected
        reverse = cql.rows(nodes[0], f"SELECT * FROM ks.{table} WHERE k = {k} ORDER BY c DESC")
        assert reverse == expected[::-1]
    expected = [(r["k"], r["c"], r.get("v")) for r in store.scan_all("ks", table)]
    got = pages(cql, f"SELECT * FROM ks.{table}", 3, nodes=nodes)
    assert [r for p in got for r in p] == expected
    assert cql.rows(nodes[-1], f"SELECT count(*) FROM ks.{table}") == [(len(expected),)]
