"""A real 3-node cluster of OS processes on loopback: consistency levels, failures, restarts.

Kept few and fast: one cluster for the module, scenarios in order. Gossip runs every 500 ms and
phi_convict_threshold is 2.0, so a silent node is convicted after ~2.3 s instead of ~18 s.
"""
import pytest

from ring.errors import UnavailableError
from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "num_tokens": 8}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("clusters")
    c = LocalCluster.create("it", n=3, root=str(root), settings=SETTINGS)
    try:
        c.start(timeout_s=60)
        yield c
    finally:
        c.remove()


@pytest.fixture(scope="module")
def session(cluster):
    client = cluster.client()
    s = client.connect()
    s.create_keyspace("it", {"class": "SimpleStrategy", "replication_factor": 3})
    s.create_table("kv", {"k": "int", "v": "text"}, primary_key="k", keyspace="it")
    yield client.connect("it")
    client.shutdown()


def test_schema_created_on_one_node_is_usable_on_all(cluster, session):
    for ep in cluster.contact_points():   # each node coordinates in turn
        session.execute("insert", endpoint=ep, keyspace="it", table="kv", row={"k": 1000, "v": ep}, consistency="ALL")
        got = session.execute("get", endpoint=ep, keyspace="it", table="kv", key={"k": 1000}, consistency="ALL")
        assert got["v"] == ep


def test_quorum_reads_see_quorum_writes(session):
    for k in range(200):
        session.insert("kv", {"k": k, "v": f"v{k}"}, consistency="QUORUM")
    for k in range(200):
        assert session.get("kv", {"k": k}, consistency="QUORUM") == {"k": k, "v": f"v{k}"}
    rows = list(session.scan_all("kv", page_size=37, consistency="QUORUM"))
    assert {r["k"] for r in rows} >= set(range(200))


def test_one_node_killed_quorum_works_all_is_unavailable(cluster, session):
    victim = cluster.nodes[2]
    cluster.kill(victim)
    cluster.wait_for_down(victim)
    session.cluster.refresh_metadata()   # what a driver learns from a pushed DOWN event
    for k in range(50):
        session.insert("kv", {"k": k, "v": "after-kill"}, consistency="QUORUM")
        assert session.get("kv", {"k": k}, consistency="QUORUM")["v"] == "after-kill"
    with pytest.raises(UnavailableError) as err:
        session.insert("kv", {"k": 1, "v": "x"}, consistency="ALL")
    assert err.value.required == 3 and err.value.alive == 2


def test_restarted_node_rejoins_with_its_data(cluster, session):
    victim = cluster.nodes[2]
    cluster.restart(victim)
    cluster.wait_for_up(victim)
    # k=150 was written at QUORUM before the kill, so the restarted node holds it (RF 3); at ONE with
    # itself as coordinator it answers from its own replica
    got = session.execute("get", endpoint=victim.endpoint, keyspace="it", table="kv", key={"k": 150}, consistency="ONE")
    assert got == {"k": 150, "v": "v150"}
    assert session.get("kv", {"k": 3}, consistency="ALL")["v"] == "after-kill"  # repaired by the ALL read
    session.insert("kv", {"k": 1, "v": "all-back"}, consistency="ALL")


def test_paused_node_is_convicted_and_recovers_after_resume(cluster, session):
    victim = cluster.nodes[1]
    cluster.pause(victim)
    try:
        cluster.wait_for_down(victim)
        session.cluster.refresh_metadata()
        session.insert("kv", {"k": 2, "v": "while-paused"}, consistency="QUORUM")
    finally:
        cluster.resume(victim)
    cluster.wait_for_up(victim)
    session.insert("kv", {"k": 2, "v": "resumed"}, consistency="ALL")
    assert session.get("kv", {"k": 2}, consistency="ALL")["v"] == "resumed"
