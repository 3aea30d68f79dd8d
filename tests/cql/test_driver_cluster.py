"""A real 3-node cluster (`LocalCluster`, node N on 127.0.0.N, CQL on one port for all) driven only
through cassandra-driver: default protocol negotiation, DDL, prepared INSERT/SELECT with
token-aware routing checked against `nodetool getendpoints`, paging, TTL, DELETE, BATCH,
Unavailable raised as the driver's class, and a schema change seen by a second Cluster."""
from __future__ import annotations

import time

import pytest

from cassandra import ConsistencyLevel, Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import FallthroughRetryPolicy, TokenAwarePolicy, DCAwareRoundRobinPolicy
from cassandra.query import BatchStatement, SimpleStatement

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4, "log_level": "WARNING"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster.create("cql", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    with c:
        c.start(timeout_s=60)
        yield c
    c.remove()


def driver_cluster(c: LocalCluster) -> Cluster:
    port = int(c.nodes[0].cql_endpoint.rsplit(":", 1)[1])
    assert all(nh.cql_endpoint.endswith(f":{port}") for nh in c.nodes)  # one CQL port for every node
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
                               retry_policy=FallthroughRetryPolicy(), consistency_level=ConsistencyLevel.QUORUM)
    return Cluster([nh.cql_endpoint.rsplit(":", 1)[0] for nh in c.nodes], port=port,
                   execution_profiles={EXEC_PROFILE_DEFAULT: profile})


@pytest.fixture(scope="module")
def session(cluster):
    dc = driver_cluster(cluster)
    s = dc.connect()
    s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
    s.execute("CREATE TABLE ks.t (k int, c int, v text, PRIMARY KEY (k, c))")
    yield s
    dc.shutdown()


def test_negotiates_a_version_and_sees_three_hosts(session):
    assert session.cluster.protocol_version in (4, 5)
    assert len(session.cluster.metadata.all_hosts()) == 3
    assert set(session.cluster.metadata.keyspaces["ks"].tables["t"].columns) == {"k", "c", "v"}


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
    session.execute("INSERT INTO ks.t (k, c, v) VALUES (200, 1, 'gone') USING TTL 1")
    session.execute("DELETE FROM ks.t WHERE k = 100 AND c = 3")
    assert 3 not in [r.c for r in session.execute("SELECT c FROM ks.t WHERE k = 100")]
    batch = BatchStatement()
    batch.add(insert, (300, 1, "a"))
    batch.add(insert, (300, 2, "b"))
    session.execute(batch)
    assert [r.v for r in session.execute("SELECT v FROM ks.t WHERE k = 300")] == ["a", "b"]
    time.sleep(1.5)
    assert list(session.execute("SELECT v FROM ks.t WHERE k = 200")) == []


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


def test_unavailable_is_the_drivers_class_when_nodes_are_killed(cluster, session):
    cluster.kill("node2")
    cluster.kill("node3")
    cluster.wait_for_down("node2")
    cluster.wait_for_down("node3")
    statement = SimpleStatement("INSERT INTO ks.t (k, c, v) VALUES (1, 9, 'x')", consistency_level=ConsistencyLevel.ALL)
    with pytest.raises(Unavailable):
        session.execute(statement, host=next(h for h in session.cluster.metadata.all_hosts()
                                             if h.address == "127.0.0.1"))
