"""Real processes: add a node under a QUORUM write load and lose nothing; decommission one and
lose nothing; removenode re-replicates a dead node's ranges."""
import threading
import time

import pytest

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 500, "phi_convict_threshold": 4.0, "num_tokens": 4, "ring_delay_ms": 1500}


class Load:
    """A thread writing at QUORUM (each write retried until acknowledged) while the ring changes."""

    def __init__(self, cluster, start_key: int = 0):
        self.client = cluster.client(timeout_s=10)
        self.session = self.client.connect("topo")
        self.acked: dict[int, str] = {}
        self.errors: list[str] = []
        self.next_key = start_key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            k = self.next_key
            self.next_key += 1
            for _attempt in range(20):
                try:
                    self.session.insert("kv", {"k": k, "v": f"v{k}"}, consistency="QUORUM")
                    self.acked[k] = f"v{k}"
                    break
                except Exception as e:  # noqa: BLE001 - counted; the write is retried
                    self.errors.append(f"{type(e).__name__}: {e}")
                    time.sleep(0.1)
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)
        self.client.shutdown()


def _prepare(cluster, rows: int = 300):
    client = cluster.client()
    s = client.connect()
    s.create_keyspace("topo", {"class": "SimpleStrategy", "replication_factor": 3})
    s.create_table("kv", {"k": "int", "v": "text"}, primary_key="k", keyspace="topo")
    s = client.connect("topo")
    for k in range(-rows, 0):
        s.insert("kv", {"k": k, "v": f"v{k}"}, consistency="QUORUM")
    client.shutdown()
    return {k: f"v{k}" for k in range(-rows, 0)}


def _on_every_replica(cluster, expected: dict) -> list:
    """(key, replica) pairs where a replica, read alone at ONE, lacks an acknowledged row."""
    client = cluster.client()
    s = client.connect("topo")
    client.refresh_metadata()
    missing = []
    for k, v in sorted(expected.items()):
        for ep in s.execute("getendpoints", keyspace="topo", table="kv", key={"k": k})["endpoints"]:
            row = s.execute("get", endpoint=ep, keyspace="topo", table="kv", key={"k": k}, consistency="ONE")
            if (row or {}).get("v") != v:
                missing.append((k, ep))
    client.shutdown()
    return missing


def test_add_then_decommission_under_write_load_loses_nothing(tmp_path):
    with LocalCluster.create("topo", n=3, root=str(tmp_path), settings=SETTINGS) as cluster:
        cluster.start(timeout_s=60)
        expected = _prepare(cluster)
        with Load(cluster) as load:
            time.sleep(1)
            added = cluster.add(timeout_s=120)
            time.sleep(1)
        assert len(load.acked) > 50
        expected.update(load.acked)
        rows = cluster.status()
        assert {r["endpoint"] for r in rows} == {nh.endpoint for nh in cluster.nodes}
        assert all(r["state"] == "NORMAL" and r["up"] for r in rows)
        assert added.endpoint in {r["endpoint"] for r in rows}
        joined = cluster.ask(added, "netstats")
        assert joined["mode"] == "NORMAL"
        bootstrap = next(op for op in joined["operations"] if op["operation"] == "bootstrap")
        assert bootstrap["partitions"] > 0 and bootstrap["ranges_done"] == bootstrap["ranges"]
        assert _on_every_replica(cluster, expected) == []

        leaving = cluster.nodes[0]
        with Load(cluster, start_key=100_000) as load:
            time.sleep(1)
            summary = cluster.decommission(leaving, timeout_s=120)
            time.sleep(1)
        assert summary["partitions"] > 0
        expected.update(load.acked)
        assert leaving.endpoint not in {r["endpoint"] for r in cluster.status()}
        assert _on_every_replica(cluster, expected) == []


def test_removenode_rereplicates_a_dead_node(tmp_path):
    with LocalCluster.create("rm", n=4, root=str(tmp_path), settings=SETTINGS) as cluster:
        cluster.start(timeout_s=60)
        expected = _prepare(cluster, rows=200)
        dead = cluster.nodes[3]
        host_id = next(r["host_id"] for r in cluster.status() if r["endpoint"] == dead.endpoint)
        cluster.kill(dead)
        cluster.wait_for_down(dead)
        summary = cluster.removenode(host_id, timeout_s=120)
        assert summary["endpoint"] == dead.endpoint and summary["partitions"] > 0
        assert dead.endpoint not in {r["endpoint"] for r in cluster.status()}
        assert _on_every_replica(cluster, expected) == []
