"""ring/cql/system_tables.py: what drivers read on connect, checked against the simulated ring itself."""
import ipaddress
import uuid

import pytest

from ring.cql import system_tables
from ring.cql.responses import Error, ErrorCode
from ring.cql.result import Rows
from ring.cql.types import parse_type
from ring.runtime.sim import Simulation
from tests.cql.cql_sim import CqlSim, decode, encode

FAST = {"gossip_interval_ms": 200, "phi_convict_threshold": 4.0}


@pytest.fixture
def cql():
    sim = Simulation(11, node_options=FAST)
    sim.run_for(3000)
    c = CqlSim(sim)
    c.ok("n1", "CREATE KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 2}")
    c.ok("n1", "CREATE TABLE ks.t (k int, k2 text, c timestamp, d int, v blob, PRIMARY KEY ((k, k2), c, d)) "
               "WITH CLUSTERING ORDER BY (c DESC)")
    c.ok("n1", "CREATE INDEX t_v ON ks.t (v)")
    c.agree()
    yield c
    sim.close()


def as_dicts(response: Rows) -> list[dict]:
    names = [c.name for c in response.metadata.columns]
    return [dict(zip(names, row)) for row in decode(response)]


def test_local_describes_this_node_and_its_tokens(cql):
    for name, sn in cql.sim.nodes.items():
        (row,) = as_dicts(cql.ok(name, "SELECT * FROM system.local WHERE key = 'local'"))
        node = sn.node
        assert row["tokens"] == {str(t) for t in node.tokens}
        assert row["partitioner"] == "org.apache.cassandra.dht.Murmur3Partitioner"
        assert (row["cluster_name"], row["data_center"], row["rack"]) == ("dynatable", "datacenter1", "rack1")
        assert row["host_id"] == system_tables.host_uuid(node.config.host_id)
        assert row["release_version"] == "4.0.11" and row["cql_version"] == "3.4.5"
        assert row["rpc_address"] == ipaddress.ip_address(sn.endpoint.split(":")[0]) and row["rpc_port"] == 9042
        assert row["bootstrapped"] == "COMPLETED" and "dse_version" not in row and "workload" not in row
    meta = cql.ok("n1", "SELECT * FROM system.local").metadata.columns
    types = {c.name: str(c.type) for c in meta}
    assert (types["tokens"], types["host_id"], types["schema_version"], types["rpc_address"]) == (
        "set<text>", "uuid", "uuid", "inet")
    assert {(c.keyspace, c.table) for c in meta} == {("system", "local")}


def test_peers_list_the_other_nodes_with_their_tokens(cql):
    nodes = cql.sim.nodes
    for name in nodes:
        peers = as_dicts(cql.ok(name, "SELECT * FROM system.peers"))
        others = {ipaddress.ip_address(sn.endpoint.split(":")[0]): sn.node for n, sn in nodes.items() if n != name}
        assert {p["peer"] for p in peers} == set(others)
        for p in peers:
            node = others[p["peer"]]
            assert p["tokens"] == {str(t) for t in node.tokens} and p["rpc_address"] == p["peer"]
            assert p["host_id"] == system_tables.host_uuid(node.config.host_id)
            assert p["data_center"] and p["rack"] and p["schema_version"]
        v2 = as_dicts(cql.ok(name, "SELECT host_id, peer, peer_port, native_address, native_port, schema_version "
                                   "FROM system.peers_v2"))
        assert {(p["native_address"], p["native_port"], p["peer_port"]) for p in v2} == {(a, 9042, 9100) for a in others}


def test_native_address_and_port_come_from_gossip():
    sim = Simulation(12, node_options={**FAST, "native_transport_port": 19042, "native_address": "127.0.0.9"})
    try:
        sim.run_for(3000)
        c = CqlSim(sim)
        (row,) = as_dicts(c.ok("n2", "SELECT rpc_address, rpc_port FROM system.local"))
        assert row == {"rpc_address": ipaddress.ip_address("127.0.0.9"), "rpc_port": 19042}
        v2 = as_dicts(c.ok("n1", "SELECT native_address, native_port FROM system.peers_v2"))
        assert v2 == [{"native_address": ipaddress.ip_address("127.0.0.9"), "native_port": 19042}] * 2
    finally:
        sim.close()


def test_schema_version_agrees_and_follows_schema_changes(cql):
    def versions():
        local = {n: decode(cql.ok(n, "SELECT schema_version FROM system.local"))[0][0] for n in cql.sim.nodes}
        seen = {n: {p[0] for p in decode(cql.ok(n, "SELECT schema_version FROM system.peers"))} for n in cql.sim.nodes}
        return local, seen
    cql.sim.run_for(1000)                      # a gossip round carries every node's SCHEMA state
    local, seen = versions()
    assert len(set(local.values())) == 1 and all(s == set(local.values()) for s in seen.values())
    assert isinstance(next(iter(local.values())), uuid.UUID)
    cql.ok("n2", "CREATE TABLE ks.u (k int PRIMARY KEY)")
    cql.sim.run_for(0)
    assert decode(cql.ok("n2", "SELECT schema_version FROM system.local"))[0][0] != local["n1"]
    cql.agree()
    cql.sim.run_for(1000)                      # one more gossip round carries the SCHEMA states
    local2, seen2 = versions()
    assert len(set(local2.values())) == 1 and set(local2.values()) != set(local.values())
    assert all(s == set(local2.values()) for s in seen2.values())


def test_system_schema_describes_keyspaces_tables_columns_indexes(cql):
    ks = as_dicts(cql.ok("n3", "SELECT * FROM system_schema.keyspaces WHERE keyspace_name = 'ks'"))
    assert ks == [{"keyspace_name": "ks", "durable_writes": True, "replication": {
        "class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "datacenter1": "2"}}]
    names = {r["keyspace_name"] for r in as_dicts(cql.ok("n3", "SELECT * FROM system_schema.keyspaces"))}
    assert names == {"system", "system_schema", "ks"}
    (table,) = as_dicts(cql.ok("n3", "SELECT * FROM system_schema.tables WHERE keyspace_name = 'ks' "
                                     "AND table_name = 't'"))
    assert table["flags"] == {"compound"} and table["gc_grace_seconds"] == 864000
    assert table["id"] == uuid.UUID(cql.sim.nodes["n3"].store.table("ks", "t").id)
    cols = {r["column_name"]: (r["kind"], r["position"], r["clustering_order"], r["type"]) for r in as_dicts(
        cql.ok("n3", "SELECT * FROM system_schema.columns WHERE keyspace_name = 'ks' AND table_name = 't'"))}
    assert cols == {"k": ("partition_key", 0, "none", "int"), "k2": ("partition_key", 1, "none", "text"),
                    "c": ("clustering", 0, "desc", "timestamp"), "d": ("clustering", 1, "asc", "int"),
                    "v": ("regular", -1, "none", "blob")}
    idx = as_dicts(cql.ok("n3", "SELECT * FROM system_schema.indexes WHERE keyspace_name = 'ks'"))
    assert idx == [{"keyspace_name": "ks", "table_name": "t", "index_name": "t_v", "kind": "COMPOSITES",
                    "options": {"target": "v"}}]
    # the tables drivers select from on connect exist, even when empty
    for name in ("types", "functions", "aggregates", "triggers", "views", "dropped_columns"):
        r = cql.ok("n1", f"SELECT * FROM system_schema.{name}")
        assert r.rows == () and r.metadata.columns[0].name == "keyspace_name"
    for name in ("keyspaces", "tables", "columns"):
        assert cql.ok("n1", f"SELECT * FROM system_virtual_schema.{name}").rows == ()
    # system_schema describes the virtual tables too (cqlsh prints SELECTs from them with it)
    local_cols = decode(cql.ok("n1", "SELECT column_name, type FROM system_schema.columns WHERE keyspace_name = "
                                     "'system' AND table_name = 'local'"))
    assert ("tokens", "set<text>") in local_cols and ("schema_version", "uuid") in local_cols


def test_virtual_selects_filter_project_count_and_bind(cql):
    assert decode(cql.ok("n1", "SELECT count(*) FROM system.peers")) == [(2,)]
    assert decode(cql.ok("n1", "SELECT keyspace_name AS ks FROM system_schema.tables WHERE keyspace_name IN "
                               "('ks', 'nope') LIMIT 1")) == [("ks",)]
    p = cql.prepare("n1", "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?")
    assert [s.name for s in p.bind] == ["keyspace_name"]
    assert decode(cql.execute("n1", p.query_id, values=[encode(parse_type("text"), "ks")])) == [("t",)]
    for bad in ("SELECT * FROM system.nope", "SELECT * FROM system.schema_events", "SELECT writetime(key) FROM "
                "system.local", "DELETE FROM system.local WHERE key = 'local'", "CREATE TABLE system.x (k int "
                "PRIMARY KEY)", "DROP KEYSPACE system_schema", "SELECT * FROM system.local WHERE key > 'a'"):
        r = cql.run("n1", bad)
        assert isinstance(r, Error) and r.code == ErrorCode.INVALID, bad
