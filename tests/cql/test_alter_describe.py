"""ALTER TABLE / KEYSPACE and server-side DESCRIBE through the executor on a simulated 3-node cluster."""
import pytest

from ring.cql.responses import Error, ErrorCode
from ring.cql.result import SchemaChangeResult, Void
from ring.runtime.sim import Simulation
from tests.cql.cql_sim import CqlSim
from tests.cql.test_execute import FAST, cluster, error


@pytest.fixture
def cql():
    c = cluster()
    yield c
    c.sim.close()


def _change(r):
    assert isinstance(r, SchemaChangeResult), r
    return r.change.change_type, r.change.target, r.change.keyspace, r.change.name


def _rows(c, node, q):
    return sorted(c.rows(node, q, consistency="QUORUM"))


def test_add_drop_readd_across_nodes(cql):
    cql.ok("n1", "INSERT INTO ks.t (k, c, v, w) VALUES (1, 1, 'old', 10)", consistency="ALL")
    assert _change(cql.run("n2", "ALTER TABLE ks.t ADD (x int, y text)")) == ("UPDATED", "TABLE", "ks", "t")
    cql.agree()
    cql.ok("n3", "INSERT INTO ks.t (k, c, x, y) VALUES (1, 2, 7, 'y')", consistency="ALL")
    assert _rows(cql, "n1", "SELECT k, c, v, x, y FROM ks.t WHERE k = 1") == [(1, 1, "old", None, None),
                                                                            (1, 2, None, 7, "y")]
    assert _change(cql.run("n3", "ALTER TABLE ks.t DROP v")) == ("UPDATED", "TABLE", "ks", "t")
    cql.agree()
    for node in ("n1", "n2", "n3"):
        assert error(cql.run(node, "SELECT v FROM ks.t WHERE k = 1"))[0] == ErrorCode.INVALID
    dropped = cql.rows("n1", "SELECT column_name, type, kind FROM system_schema.dropped_columns "
                             "WHERE keyspace_name = 'ks' AND table_name = 't'")
    assert dropped == [("v", "text", "regular")]
    cql.ok("n1", "ALTER TABLE ks.t ADD v text")
    cql.agree()
    assert _rows(cql, "n2", "SELECT k, c, v FROM ks.t WHERE k = 1") == [(1, 1, None), (1, 2, None)]  # never back
    code, message = error(cql.run("n1", "ALTER TABLE ks.t ADD w text"))
    assert code == ErrorCode.INVALID and message == "Column with name 'w' already exists"
    assert error(cql.run("n1", "ALTER TABLE ks.t DROP nope"))[1] == "Column nope was not found in table t"
    assert error(cql.run("n1", "ALTER TABLE ks.t DROP k"))[1] == "Cannot drop PRIMARY KEY column k"
    assert error(cql.run("n1", "ALTER TABLE ks.t RENAME w TO w2"))[1] == "Cannot rename non PRIMARY KEY column w"
    assert error(cql.run("n1", "ALTER TABLE ks.nope ADD a int"))[1] == "Table 'ks.nope' doesn't exist"
    assert isinstance(cql.run("n1", "ALTER TABLE IF EXISTS ks.nope ADD a int"), Void)
    assert isinstance(cql.run("n1", "ALTER TABLE ks.t ADD IF NOT EXISTS w int"), SchemaChangeResult)
    cql.ok("n1", "CREATE TABLE ks.flat (k int PRIMARY KEY, v int)")
    assert error(cql.run("n1", "ALTER TABLE ks.flat ADD s int STATIC"))[1] == \
        "Static columns are not allowed in tables with no clustering columns (s)"
    cql.ok("n1", "ALTER TABLE ks.t ADD s int STATIC")
    cql.agree()
    cql.ok("n2", "UPDATE ks.t SET s = 9 WHERE k = 1")
    assert {r[0] for r in cql.rows("n3", "SELECT s FROM ks.t WHERE k = 1", consistency="QUORUM")} == {9}
    assert error(cql.run("n1", "ALTER TABLE ks.t ALTER w TYPE text"))[1] == \
        "Altering column types is no longer supported"


def test_rename_clustering_column_and_options(cql):
    cql.ok("n1", "INSERT INTO ks.t (k, c, v) VALUES (5, 3, 'a')", consistency="ALL")
    cql.ok("n2", "ALTER TABLE ks.t RENAME c TO seq")
    cql.ok("n2", "ALTER TABLE ks.t WITH gc_grace_seconds = 3600 AND comment = 'kept quiet'")
    cql.agree()
    assert cql.rows("n3", "SELECT k, seq, v FROM ks.t WHERE k = 5 AND seq = 3") == [(5, 3, "a")]
    assert cql.rows("n1", "SELECT gc_grace_seconds FROM system_schema.tables WHERE keyspace_name = 'ks' "
                          "AND table_name = 't'") == [(3600,)]


def test_alter_keyspace(cql):
    r = cql.run("n1", "ALTER KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2} "
                      "AND durable_writes = false")
    assert _change(r) == ("UPDATED", "KEYSPACE", "ks", "")
    cql.agree()
    for node in ("n1", "n2", "n3"):
        (row,) = cql.rows(node, "SELECT durable_writes, replication FROM system_schema.keyspaces "
                                "WHERE keyspace_name = 'ks'")
        assert row[0] is False and row[1]["replication_factor"] == "2"
        assert cql.sim.nodes[node].node.strategy("ks").rf == 2
    code, message = error(cql.run("n1", "ALTER KEYSPACE ks WITH replication = "
                                        "{'class': 'NetworkTopologyStrategy', 'nowhere': 3}"))
    assert code == ErrorCode.INVALID and "Unrecognized strategy option {nowhere}" in message
    assert error(cql.run("n1", "ALTER KEYSPACE nope WITH durable_writes = true"))[1] == "Keyspace 'nope' doesn't exist"


SCHEMA = [
    "CREATE KEYSPACE app WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2} "
    "AND durable_writes = false",
    "CREATE TABLE app.events (user text, day int, seq timeuuid, what text, n bigint, \"OddName\" double, "
    "PRIMARY KEY ((user, day), seq)) WITH CLUSTERING ORDER BY (seq DESC) AND gc_grace_seconds = 60 "
    "AND compaction = {'class': 'LeveledCompactionStrategy'} AND compression = {'class': 'LZ4Compressor'} "
    "AND default_time_to_live = 5 AND speculative_retry = 'ALWAYS' AND bloom_filter_fp_chance = 0.1",
    "CREATE TABLE app.kv (k blob PRIMARY KEY, v text, gone int)",
    "CREATE INDEX kv_v ON app.kv (v)",
    "ALTER TABLE app.kv DROP gone",
    "ALTER TABLE app.kv ADD later int",
    "CREATE TABLE app.feed (k int, c int, owner text STATIC, v int, PRIMARY KEY (k, c))",
    "ALTER TABLE app.feed ADD (total bigint STATIC, note text)",
]
SCHEMA_TABLES = ("keyspaces", "tables", "columns", "indexes", "dropped_columns")


def _schema(c, node):
    out = {}
    for table in SCHEMA_TABLES:
        rows = c.run(node, f"SELECT * FROM system_schema.{table} WHERE keyspace_name = 'app'")
        names = [s.name for s in rows.metadata.columns]
        decoded = [dict(zip(names, r)) for r in c.rows(node, f"SELECT * FROM system_schema.{table} "
                                                             f"WHERE keyspace_name = 'app'")]
        for d in decoded:
            d.pop("id", None)           # a table's id is new on the fresh cluster
            if table == "dropped_columns":
                d.pop("dropped_time")   # compared below, from the statement's USING TIMESTAMP
        out[table] = sorted(map(repr, decoded))
    return out


def test_describe_recreates_the_schema_exactly():
    old = cluster()
    for q in SCHEMA:
        old.ok("n1", q)
    old.agree()
    statements = [row[3] for row in old.rows("n2", "DESCRIBE KEYSPACE app WITH INTERNALS")]
    assert statements[0].startswith("CREATE KEYSPACE app WITH replication = ")
    assert [r[2] for r in old.rows("n2", "DESCRIBE KEYSPACE app")] == ["app", "events", "feed", "kv", "kv_v"]
    fresh = CqlSim(Simulation(8, node_options=FAST))
    fresh.sim.run_for(3000)
    for text in statements:
        for statement in filter(None, (s.strip() for s in text.split(";\n"))):
            fresh.ok("n1", statement)
    fresh.agree()
    assert _schema(fresh, "n3") == _schema(old, "n3")
    drop_time = old.rows("n1", "SELECT dropped_time FROM system_schema.dropped_columns WHERE keyspace_name = 'app'")
    assert fresh.rows("n2", "SELECT dropped_time FROM system_schema.dropped_columns "
                            "WHERE keyspace_name = 'app'") == drop_time
    old.sim.close()
    fresh.sim.close()


def test_describe_forms(cql):
    cql.ok("n1", "CREATE INDEX t_v ON ks.t (v)")
    cql.agree()
    assert ("ks", "keyspace", "ks") in cql.rows("n1", "DESCRIBE KEYSPACES")
    tables = cql.rows("n1", "DESC TABLES")
    assert ("ks", "table", "t") in tables and ("system_schema", "table", "dropped_columns") in tables
    (table, index) = cql.rows("n1", "DESCRIBE TABLE ks.t")
    assert table[3].startswith("CREATE TABLE ks.t (\n    k int,\n    c int,\n    v text,\n    w int,\n"
                               "    PRIMARY KEY (k, c)\n) WITH CLUSTERING ORDER BY (c ASC)\n    AND ")
    assert index == ("ks", "index", "t_v", "CREATE INDEX t_v ON ks.t (v);")
    assert cql.rows("n1", "DESCRIBE INDEX ks.t_v") == [index]
    cql.ok("n2", "USE ks")
    assert cql.rows("n2", "DESC TABLES") == [("ks", "table", "t")]
    assert cql.rows("n2", "DESC t") == cql.rows("n2", "DESCRIBE TABLE t") == [table, index]
    assert cql.rows("n2", "DESCRIBE SCHEMA")[0][3].startswith("CREATE KEYSPACE ks")
    cluster_row = cql.rows("n2", "DESCRIBE CLUSTER")[0]
    assert cluster_row[1] == "org.apache.cassandra.dht.Murmur3Partitioner" and len(cluster_row[3]) > 0
    assert cql.rows("n1", "DESCRIBE FULL SCHEMA")[-1][0] == "system_virtual_schema"
    r = cql.run("n1", "DESCRIBE TABLE ks.nope")
    assert isinstance(r, Error) and r.message == "'nope' not found in keyspace 'ks'"
    assert error(cql.run("n1", "DESCRIBE KEYSPACE"))[1] == "No keyspace specified and no current keyspace"
