"""A real 3-node cluster (`LocalCluster`, node N on 127.0.0.N, CQL on one port for all) driven only
through cassandra-driver: default protocol negotiation, DDL, prepared INSERT/SELECT with
token-aware routing checked against `nodetool getendpoints`, paging, TTL and ttl(), DELETE, BATCH, every
type as partition key, clustering key and regular column, TRUNCATE (and no resurrection after a
killed node restarts), Overloaded answered by a node that serves on, Unavailable raised as the
driver's class (writes and TRUNCATE), and a schema change seen by a second Cluster. The CQL limits are small here so that Overloaded is reachable;
the node kill comes last (the cluster is shared by the module)."""
from __future__ import annotations

import datetime
import decimal
import ipaddress
import time
import uuid

import pytest

from cassandra import ConsistencyLevel, InvalidRequest, Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import (DCAwareRoundRobinPolicy, FallthroughRetryPolicy, TokenAwarePolicy,
                                WhiteListRoundRobinPolicy)
from cassandra.protocol import OverloadedErrorMessage
from cassandra.query import BatchStatement, SimpleStatement
from cassandra.util import Duration

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

PER_CONNECTION, PER_NODE = 64, 96
SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4, "log_level": "WARNING",
            "native_transport_max_requests_per_connection": PER_CONNECTION,
            "native_transport_max_concurrent_requests": PER_NODE}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster.create("cql", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    with c:
        c.start(timeout_s=60)
        yield c
    c.remove()


def driver_cluster(c: LocalCluster, **kwargs) -> Cluster:
    port = int(c.nodes[0].cql_endpoint.rsplit(":", 1)[1])
    assert all(nh.cql_endpoint.endswith(f":{port}") for nh in c.nodes)  # one CQL port for every node
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
                               retry_policy=FallthroughRetryPolicy(), consistency_level=ConsistencyLevel.QUORUM)
    return Cluster([nh.cql_endpoint.rsplit(":", 1)[0] for nh in c.nodes], port=port,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile}, **kwargs)


@pytest.fixture(scope="module")
def session(cluster):
    dc = driver_cluster(cluster)
    s = dc.connect()
    s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
    s.execute("CREATE TABLE ks.t (k int, c int, v text, PRIMARY KEY (k, c))")
    yield s
    dc.shutdown()


def test_negotiates_v5_with_lz4_and_sees_three_hosts_and_the_schema(session):
    assert session.cluster.protocol_version == 5
    assert session.cluster.control_connection._connection.compressor is not None   # lz4, as offered
    assert len(session.cluster.metadata.all_hosts()) == 3
    table = session.cluster.metadata.keyspaces["ks"].tables["t"]
    assert list(table.columns) == ["k", "c", "v"]
    assert [c.name for c in table.partition_key] == ["k"] and [c.name for c in table.clustering_key] == ["c"]
    assert [table.columns[n].cql_type for n in ("k", "c", "v")] == ["int", "int", "text"]
    replication = session.cluster.metadata.keyspaces["ks"].replication_strategy
    assert type(replication).__name__ == "SimpleStrategy" and replication.replication_factor == 2


def test_prepared_writes_and_reads_go_to_the_replicas_nodetool_names(cluster, session):
    insert = session.prepare("INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)")
    select = session.prepare("SELECT c, v FROM ks.t WHERE k = ?")
    for k in range(12):
        bound = insert.bind((k, 1, f"v{k}"))
        replicas = {h.address for h in session.cluster.metadata.get_replicas("ks", bound.routing_key)}
        endpoints = cluster.ask(cluster.nodes[0], "getendpoints", keyspace="ks", table="t", key={"k": k})["endpoints"]
        assert replicas == {ep.rsplit(":", 1)[0] for ep in endpoints}
        future = session.execute_async(bound)
        future.result()
        assert future.coordinator_host.address in replicas  # token-aware: a replica coordinates
        assert [tuple(r) for r in session.execute(select, (k,))] == [(1, f"v{k}")]


def test_paging_ttl_delete_and_batch(session):
    insert = session.prepare("INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)")
    for c in range(25):
        session.execute(insert, (100, c, "p"))
    statement = SimpleStatement("SELECT c FROM ks.t WHERE k = 100", fetch_size=10)
    result = session.execute(statement)
    assert result.has_more_pages and [r.c for r in result] == list(range(25))
    many = [r.c for r in session.execute(SimpleStatement("SELECT c FROM ks.t WHERE k = 100", fetch_size=2))]
    assert many == list(range(25))                                          # 13 pages, resumed each time
    scan = session.execute(SimpleStatement("SELECT k, c FROM ks.t", fetch_size=3))
    assert len({(r.k, r.c) for r in scan}) == len(list(session.execute("SELECT k, c FROM ks.t")))
    session.execute("INSERT INTO ks.t (k, c, v) VALUES (200, 1, 'gone') USING TTL 1")
    session.execute("INSERT INTO ks.t (k, c, v) VALUES (201, 1, 'kept') USING TTL 100")
    (left,), = session.execute("SELECT ttl(v) FROM ks.t WHERE k = 201 AND c = 1")
    assert 95 < left <= 100                                                 # seconds left, an int
    assert session.execute("SELECT ttl(v) FROM ks.t WHERE k = 300").column_names == ["ttl(v)"]
    session.execute("DELETE FROM ks.t WHERE k = 100 AND c = 3")
    assert 3 not in [r.c for r in session.execute("SELECT c FROM ks.t WHERE k = 100")]
    batch = BatchStatement()
    batch.add(insert, (300, 1, "a"))
    batch.add(insert, (300, 2, "b"))
    session.execute(batch)
    assert [r.v for r in session.execute("SELECT v FROM ks.t WHERE k = 300")] == ["a", "b"]
    time.sleep(1.5)
    assert list(session.execute("SELECT v FROM ks.t WHERE k = 200")) == []


def test_lightweight_transactions_and_static_columns_through_the_driver(session):
    """ResultSet.was_applied for simple and prepared statements and batches; static columns in the
    driver's metadata; serial_consistency_level selects LOCAL_SERIAL; a SERIAL read."""
    session.execute("CREATE TABLE ks.lwt (k int, c int, s int STATIC, v int, PRIMARY KEY (k, c))")
    table = session.cluster.metadata.keyspaces["ks"].tables["lwt"]
    assert table.columns["s"].is_static and not table.columns["v"].is_static
    r = session.execute("INSERT INTO ks.lwt (k, c, s, v) VALUES (1, 1, 10, 100) IF NOT EXISTS")
    assert r.was_applied and r.column_names == ["[applied]"]
    r = session.execute("INSERT INTO ks.lwt (k, c, s, v) VALUES (1, 1, 0, 0) IF NOT EXISTS")
    assert not r.was_applied and r.one()._asdict() == {"applied": False, "k": 1, "c": 1, "s": 10, "v": 100}
    cas = session.prepare("UPDATE ks.lwt SET v = ? WHERE k = ? AND c = ? IF v = ?")
    assert session.execute(cas, (101, 1, 1, 100)).was_applied
    r = session.execute(cas, (102, 1, 1, 100))
    assert not r.was_applied and r.one().v == 101
    assert session.execute(SimpleStatement("UPDATE ks.lwt SET s = 11 WHERE k = 1 IF s = 10",
                                           serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL)).was_applied
    batch = BatchStatement()
    batch.add(SimpleStatement("UPDATE ks.lwt SET s = 12 WHERE k = 1 IF s = 11"))
    batch.add(cas, (103, 1, 1, 101))
    batch.add(SimpleStatement("INSERT INTO ks.lwt (k, c, v) VALUES (1, 2, 200)"))
    assert session.execute(batch).was_applied
    assert not session.execute(batch).was_applied
    rows = session.execute(SimpleStatement("SELECT c, s, v FROM ks.lwt WHERE k = 1",
                                           consistency_level=ConsistencyLevel.SERIAL))
    assert [tuple(r) for r in rows] == [(1, 12, 103), (2, 12, 200)]


def test_a_schema_change_reaches_a_second_cluster(cluster, session):
    other = driver_cluster(cluster)
    other.connect()
    try:
        session.execute("CREATE TABLE ks.t2 (k int PRIMARY KEY, v int)")
        deadline = time.monotonic() + 10
        while "t2" not in other.metadata.keyspaces["ks"].tables and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "t2" in other.metadata.keyspaces["ks"].tables
    finally:
        other.shutdown()


# every type: (CQL type, edge values the driver must get back unchanged)
EVERY_TYPE = [
    ("int", [-(2**31), 0, 2**31 - 1]), ("bigint", [-(2**63), 2**63 - 1]), ("varint", [-(2**70), 0, 2**70]),
    ("smallint", [-(2**15), -1, 2**15 - 1]), ("tinyint", [-128, 0, 127]),
    ("float", [-1.5, 0.0, 3.25]), ("double", [-1e300, 0.0, 2.5e-300]),
    ("decimal", [decimal.Decimal("-1.50"), decimal.Decimal("0"), decimal.Decimal("12345678901234567890.001")]),
    ("text", ["", "o'k", "\u00e9\u4e2d"]), ("ascii", ["", "plain"]), ("blob", [b"", b"\x00\xff", b"\x00"]),
    ("boolean", [False, True]),
    ("timestamp", [datetime.datetime(1969, 12, 31, 23, 59, 59, 999000), datetime.datetime(2024, 1, 2, 3, 4, 5)]),
    ("uuid", [uuid.UUID(int=0), uuid.UUID("12345678-1234-4234-8234-123456789abc")]),
    ("timeuuid", [uuid.UUID("e7a1e5c0-a5f1-11ee-8000-000000000001")]),
    ("date", [datetime.date(1, 1, 1), datetime.date(1970, 1, 1), datetime.date(9999, 12, 31)]),
    ("time", [0, 1, 86_400 * 10**9 - 1]),
    ("inet", [ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("127.0.0.1"),
              ipaddress.ip_address("::1"), ipaddress.ip_address("2001:db8::ff")]),
]


def _driver_form(cql_type: str, value):
    """What the driver hands back for `value` (its own Python forms)."""
    from cassandra.util import Date, Time
    if cql_type == "date":
        return Date(value)
    if cql_type == "time":
        return Time(value)
    if cql_type == "inet":
        return str(value)
    return value


def _cql_order(cql_type: str, value):
    if cql_type == "inet":
        return value.packed                    # Cassandra orders inet by its unsigned bytes
    if cql_type == "uuid":
        return (value.version or 0, value.bytes)
    return value


@pytest.mark.parametrize("cql_type, values", EVERY_TYPE, ids=[t for t, _ in EVERY_TYPE])
def test_every_type_as_partition_key_clustering_key_and_regular_column(session, cql_type, values):
    name = f"every_{cql_type}"
    clustered = cql_type != "decimal"          # decimal cannot be a clustering column (docs/cql.md)
    session.execute(f"CREATE TABLE ks.{name} (k {cql_type}, c {cql_type if clustered else 'int'}, "
                    f"v {cql_type}, PRIMARY KEY (k, c))")
    meta = session.cluster.metadata.keyspaces["ks"].tables[name]
    assert [meta.columns[n].cql_type for n in ("k", "v")] == [cql_type, cql_type]
    insert = session.prepare(f"INSERT INTO ks.{name} (k, c, v) VALUES (?, ?, ?)")
    select = session.prepare(f"SELECT c, v FROM ks.{name} WHERE k = ?")
    wire = (lambda x: str(x)) if cql_type == "inet" else (lambda x: x)
    cks = [(v if clustered else j, v) for j, v in enumerate(values)]
    want = sorted(cks, key=lambda cv: _cql_order(cql_type, cv[0])) if clustered else cks
    keys = [v for v in values if v not in ("", b"")]    # an empty partition key is refused, as in Cassandra
    for k in keys:
        futures = []
        for c, v in cks:
            bound = insert.bind((wire(k), wire(c) if clustered else c, wire(v)))
            replicas = {h.address for h in session.cluster.metadata.get_replicas("ks", bound.routing_key)}
            futures.append((session.execute_async(bound), replicas))
        for future, replicas in futures:
            future.result()
            assert future.coordinator_host.address in replicas         # token-aware for every key type
        got = [tuple(r) for r in session.execute(select, (wire(k),))]
        assert got == [(_driver_form(cql_type, c) if clustered else c, _driver_form(cql_type, v)) for c, v in want]
    k, c = keys[0], cks[0][0]
    session.execute(session.prepare(f"UPDATE ks.{name} SET v = null WHERE k = ? AND c = ?"),
                    (wire(k), wire(c) if clustered else c))
    assert [r.v for r in session.execute(select, (wire(k),)) if r.c == _driver_form(cql_type, c)] == [None]


def test_truncate_empties_the_table_and_a_killed_node_does_not_bring_rows_back(cluster, session):
    session.execute("CREATE TABLE ks.trunc (k int, c int, v text, PRIMARY KEY (k, c))")
    insert = session.prepare("INSERT INTO ks.trunc (k, c, v) VALUES (?, ?, ?)")
    for k in range(30):
        session.execute(insert, (k, 1, "before"))
    cluster.ask(cluster.nodes[0], "flush", keyspace="ks", table="trunc")   # some in SSTables, some not
    for k in range(30, 40):
        session.execute(insert, (k, 1, "before"))
    assert len(list(session.execute("SELECT * FROM ks.trunc"))) == 40
    session.execute("TRUNCATE ks.trunc")
    all_cl = SimpleStatement("SELECT k FROM ks.trunc", consistency_level=ConsistencyLevel.ALL)
    assert list(session.execute(all_cl)) == []
    session.execute(insert, (7, 2, "after"))
    cluster.kill("node2")                      # no flush, no drain: the commit log is replayed
    cluster.start(["node2"], timeout_s=60)
    assert [tuple(r) for r in session.execute(
        SimpleStatement("SELECT k, c, v FROM ks.trunc", consistency_level=ConsistencyLevel.ALL))] == [(7, 2, "after")]
    snapshots = cluster.ask(cluster.nodes[1], "listsnapshots")
    assert any(s["table"] == "trunc" and s["tag"].startswith("truncated-") for s in snapshots)  # auto_snapshot


def overloaded_in_a_burst(sessions, statement, n: int) -> tuple[list[str], int]:
    """Fire `n` statements on each session at once; the Overloaded messages and the successes."""
    futures = [s.execute_async(statement, timeout=30) for _ in range(n) for s in sessions]
    messages, ok = [], 0
    for f in futures:
        try:
            f.result()
            ok += 1
        except OverloadedErrorMessage as e:
            messages.append(str(e))
    return messages, ok


def test_collections_non_frozen_element_operations(session):
    session.execute("CREATE TABLE ks.coll (k int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>, "
                    "f frozen<list<int>>)")
    table = session.cluster.metadata.keyspaces["ks"].tables["coll"]
    assert [table.columns[n].cql_type for n in ("l", "s", "m", "f")] == [
        "list<int>", "set<text>", "map<text, int>", "frozen<list<int>>"]
    session.execute("INSERT INTO ks.coll (k, l, s, m, f) VALUES (1, [1, 2], {'b', 'a'}, {'x': 1}, [9, 8])")
    session.execute("UPDATE ks.coll SET l = l + [3], s = s + {'c'}, m['y'] = 2 WHERE k = 1")
    session.execute("UPDATE ks.coll SET l = [0] + l, s = s - {'a'}, m = m + {'z': 3} WHERE k = 1")
    row = session.execute("SELECT l, s, m, f FROM ks.coll WHERE k = 1").one()
    assert row.l == [0, 1, 2, 3] and sorted(row.s) == ["b", "c"] and dict(row.m) == {"x": 1, "y": 2, "z": 3}
    assert row.f == [9, 8]
    session.execute("UPDATE ks.coll SET l[1] = 10, m = m - {'x'} WHERE k = 1")
    session.execute("UPDATE ks.coll SET m['yz'] = 5 WHERE k = 1")
    session.execute("DELETE l[0], m['y'], m['yz'] FROM ks.coll WHERE k = 1")
    session.execute("UPDATE ks.coll SET l = l - [2] WHERE k = 1")
    row = session.execute("SELECT l, m FROM ks.coll WHERE k = 1").one()
    assert row.l == [10, 3] and dict(row.m) == {"z": 3}
    with pytest.raises(InvalidRequest, match="out of bound"):
        session.execute("UPDATE ks.coll SET l[7] = 1 WHERE k = 1")
    session.execute("UPDATE ks.coll SET s = {'only'}, l = [] WHERE k = 1")       # overwrite: tombstone + elements
    row = session.execute("SELECT l, s FROM ks.coll WHERE k = 1").one()
    assert row.l is None and set(row.s) == {"only"}                              # empty = null
    session.execute("UPDATE ks.coll USING TTL 1 SET s = s + {'brief'} WHERE k = 1")   # an element's own TTL
    time.sleep(2.2)
    assert set(session.execute("SELECT s FROM ks.coll WHERE k = 1").one().s) == {"only"}


def test_collections_prepared_binds_and_frozen_keys(session):
    session.execute("CREATE TABLE ks.fk (k frozen<map<text, int>>, c frozen<set<int>>, v map<int, frozen<list<text>>>,"
                    " PRIMARY KEY (k, c))")
    insert = session.prepare("INSERT INTO ks.fk (k, c, v) VALUES (?, ?, ?)")
    key = {"a": 1, "b": 2}
    for c in ({3}, {1, 2}, set(), {1, 5}):
        session.execute(insert, (key, c, {1: ["x", "y"]}))
    put = session.prepare("UPDATE ks.fk SET v[?] = ? WHERE k = ? AND c = ?")
    session.execute(put, (2, ["z"], key, {3}))
    rows = list(session.execute(session.prepare("SELECT c, v FROM ks.fk WHERE k = ?"), (key,)))
    assert [sorted(r.c or ()) for r in rows] == [[], [1, 2], [1, 5], [3]]          # frozen sets in CQL order
    assert dict(rows[-1].v) == {1: ["x", "y"], 2: ["z"]}
    assert session.cluster.metadata.keyspaces["ks"].tables["fk"].columns["k"].cql_type == "frozen<map<text, int>>"
    with pytest.raises(InvalidRequest, match="non-frozen collection"):
        session.execute("CREATE TABLE ks.bad (k list<int> PRIMARY KEY, v int)")


def test_duration_literals_binds_and_keys(session):
    session.execute("CREATE TABLE ks.dur (k int PRIMARY KEY, d duration, l list<duration>)")
    session.execute("INSERT INTO ks.dur (k, d, l) VALUES (1, 1y2mo3d4h, [1h30m, -2d])")
    session.execute(session.prepare("INSERT INTO ks.dur (k, d) VALUES (?, ?)"), (2, Duration(1, 2, 3)))
    one = session.execute("SELECT d, l FROM ks.dur WHERE k = 1").one()
    assert one.d == Duration(14, 3, 4 * 3600 * 10**9)
    assert one.l == [Duration(0, 0, 90 * 60 * 10**9), Duration(0, -2, 0)]
    assert session.execute("SELECT d FROM ks.dur WHERE k = 2").one().d == Duration(1, 2, 3)
    with pytest.raises(InvalidRequest, match="PRIMARY KEY"):
        session.execute("CREATE TABLE ks.durk (k duration PRIMARY KEY, v int)")
    with pytest.raises(InvalidRequest, match="duration"):
        session.execute("CREATE TABLE ks.durs (k int PRIMARY KEY, v set<duration>)")


def test_insert_json_and_select_json(session):
    session.execute("CREATE TABLE ks.js (k int, c text, v int, b blob, ts timestamp, l list<int>, "
                    "m map<int, text>, d duration, PRIMARY KEY (k, c))")
    session.execute("""INSERT INTO ks.js JSON '{"k": 1, "c": "x", "v": "7", "b": "0x0aff", """
                    """"ts": "2024-01-02 03:04:05.678Z", "l": [1, 2], "m": {"3": "three"}, "d": "1h"}'""")
    result = session.execute("SELECT JSON * FROM ks.js WHERE k = 1")
    assert result.column_names == ["[json]"]
    (row,) = result
    assert row[0] == ('{"k": 1, "c": "x", "b": "0x0aff", "d": "1h", "l": [1, 2], "m": {"3": "three"}, '
                      '"ts": "2024-01-02 03:04:05.678Z", "v": 7}')
    prepared = session.prepare("INSERT INTO ks.js JSON ? DEFAULT UNSET")
    session.execute(prepared, ['{"k": 1, "c": "x", "v": 8}'])                 # DEFAULT UNSET keeps l and m
    one = session.execute("SELECT v, l FROM ks.js WHERE k = 1 AND c = 'x'").one()
    assert (one.v, one.l) == (8, [1, 2])
    session.execute("""INSERT INTO ks.js JSON '{"k": 1, "c": "x", "v": 9}'""")   # DEFAULT NULL clears them
    assert session.execute("SELECT JSON v AS value, l FROM ks.js WHERE k = 1").one()[0] == '{"value": 9, "l": null}'
    with pytest.raises(InvalidRequest, match="unrecognized column"):
        session.execute("""INSERT INTO ks.js JSON '{"k": 1, "c": "x", "nope": 1}'""")


def test_batch_using_timestamp_applies_to_statements_without_their_own(session):
    session.execute("BEGIN BATCH USING TIMESTAMP 1000 "
                    "INSERT INTO ks.t (k, c, v) VALUES (500, 1, 'batch') "
                    "INSERT INTO ks.t (k, c, v) VALUES (500, 2, 'batch') APPLY BATCH")
    rows = list(session.execute("SELECT c, writetime(v) AS w FROM ks.t WHERE k = 500"))
    assert [(r.c, r.w) for r in rows] == [(1, 1000), (2, 1000)]
    session.execute("INSERT INTO ks.t (k, c, v) VALUES (500, 1, 'older') USING TIMESTAMP 999")
    assert session.execute("SELECT v FROM ks.t WHERE k = 500 AND c = 1").one().v == "batch"


def test_overloaded_per_connection_and_per_node_while_the_node_serves_on(cluster, session):
    node1 = [h for h in session.cluster.metadata.all_hosts() if h.address == "127.0.0.1"]
    statement = SimpleStatement("INSERT INTO ks.t (k, c, v) VALUES (7, 7, 'o')")
    others = []
    try:
        for _ in range(3):
            profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy(["127.0.0.1"]),
                                       retry_policy=FallthroughRetryPolicy(), consistency_level=ConsistencyLevel.ALL)
            c = Cluster([node1[0].address], port=node1[0].endpoint.port,
                        execution_profiles={EXEC_PROFILE_DEFAULT: profile})
            others.append((c, c.connect()))
        messages, ok = overloaded_in_a_burst([others[0][1]], statement, 4 * PER_CONNECTION)
        assert any("on this connection" in m for m in messages) and ok >= PER_CONNECTION // 2
        seen = []
        for _ in range(10):                         # three connections under the per-connection limit each
            messages, ok = overloaded_in_a_burst([s for _, s in others], statement, PER_CONNECTION - 8)
            seen += messages
            if any("on this node" in m for m in seen):
                break
        assert any("on this node" in m for m in seen), seen[:3]
        assert [tuple(r) for r in others[0][1].execute("SELECT c, v FROM ks.t WHERE k = 7 AND c = 7")] == [(7, "o")]
    finally:
        for c, _ in others:
            c.shutdown()


def test_unavailable_is_the_drivers_class_when_nodes_are_killed(cluster, session):
    cluster.kill("node2")
    cluster.kill("node3")
    cluster.wait_for_down("node2")
    cluster.wait_for_down("node3")
    statement = SimpleStatement("INSERT INTO ks.t (k, c, v) VALUES (1, 9, 'x')", consistency_level=ConsistencyLevel.ALL)
    with pytest.raises(Unavailable):
        session.execute(statement, host=next(h for h in session.cluster.metadata.all_hosts()
                                             if h.address == "127.0.0.1"))
    with pytest.raises(Unavailable, match="consistency level ALL"):  # TRUNCATE needs every node
        session.execute("TRUNCATE ks.t", host=next(h for h in session.cluster.metadata.all_hosts()
                                                   if h.address == "127.0.0.1"))
