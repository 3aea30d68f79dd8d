"""Real processes: hints bring a restarted replica up to date; with hints off, repair does."""
import time

import pytest

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "num_tokens": 4}


def _prepare(cluster):
    client = cluster.client()
    s = client.connect()
    s.create_keyspace("ae", {"class": "SimpleStrategy", "replication_factor": 3})
    s.create_table("kv", {"k": "int", "v": "text"}, primary_key="k", keyspace="ae")
    return client, client.connect("ae")


def _read_alone(session, endpoint, keys):
    """Read at ONE with `endpoint` as the coordinator: it answers from its own replica."""
    return {k: (session.execute("get", endpoint=endpoint, keyspace="ae", table="kv", key={"k": k},
                                consistency="ONE") or {}).get("v") for k in keys}


def _eventually(predicate, timeout_s=20):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


@pytest.mark.parametrize("hints", [True, False])
def test_a_restarted_replica_catches_up(tmp_path, hints):
    settings = dict(SETTINGS, hinted_handoff_enabled=hints)
    with LocalCluster.create("ae", n=3, root=str(tmp_path), settings=settings) as cluster:
        cluster.start(timeout_s=60)
        client, session = _prepare(cluster)
        victim = cluster.nodes[2]
        cluster.kill(victim)
        cluster.wait_for_down(victim)
        keys = list(range(40))
        for k in keys:
            session.insert("kv", {"k": k, "v": "while-down"}, consistency="QUORUM")
        cluster.restart(victim)
        cluster.wait_for_up(victim)
        if hints:
            assert _eventually(lambda: set(_read_alone(session, victim.endpoint, keys).values()) == {"while-down"})
            assert session.execute("listpendinghints", endpoint=cluster.nodes[0].endpoint) == []
        else:
            time.sleep(2)
            assert set(_read_alone(session, victim.endpoint, keys).values()) == {None}   # nothing arrived
            summary = session.execute("repair", endpoint=cluster.nodes[0].endpoint, keyspace="ae", table="kv")
            assert summary["ranges_out_of_sync"] >= 1 and summary["rows_streamed"] >= 40
            assert set(_read_alone(session, victim.endpoint, keys).values()) == {"while-down"}
        client.shutdown()


def test_a_quorum_read_that_meets_a_stale_replica_repairs_it(tmp_path):
    settings = dict(SETTINGS, hinted_handoff_enabled=False)
    with LocalCluster.create("rr", n=3, root=str(tmp_path), settings=settings) as cluster:
        cluster.start(timeout_s=60)
        client, session = _prepare(cluster)
        stale = cluster.nodes[2]
        keys = list(range(20))
        for k in keys:
            session.insert("kv", {"k": k, "v": "old"}, consistency="ALL")
        cluster.kill(stale)
        cluster.wait_for_down(stale)
        for k in keys:
            session.insert("kv", {"k": k, "v": "new"}, consistency="QUORUM")
        cluster.restart(stale)
        cluster.wait_for_up(stale)
        assert set(_read_alone(session, stale.endpoint, keys).values()) == {"old"}   # no hints: stale
        for k in keys:  # coordinated by the stale node: it reads itself and one other replica
            row = session.execute("get", endpoint=stale.endpoint, keyspace="ae", table="kv", key={"k": k},
                                  consistency="QUORUM")
            assert row["v"] == "new"
        assert set(_read_alone(session, stale.endpoint, keys).values()) == {"new"}   # repaired
        info = session.execute("info", endpoint=stale.endpoint)
        assert info["metrics"]["read_repairs"] >= len(keys)
        client.shutdown()
