"""nodetool's snapshot, restore, drain, tpstats and compactionstats verbs as a user runs them:
`dynatable nodetool ...` through click's CliRunner against a real one-node local cluster."""
import os
import re

import pytest

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

FAST = ["--set", "gossip_interval_ms=250", "--set", "num_tokens=4"]


@pytest.fixture
def cluster(run, tmp_path):
    run("cluster", "create", "one", "-n", "1", *FAST)
    try:
        assert "1 of 1 node(s) running" in run("cluster", "start")
        c = LocalCluster.load("one", str(tmp_path))
        with c.client() as client:
            s = client.connect()
            s.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 1})
            s.create_table("t", {"k": "int", "v": "text"}, primary_key="k", keyspace="ks")
        yield c
    finally:
        run("cluster", "remove")


def test_snapshot_list_restore_and_clear(run, cluster):
    with cluster.client() as client:
        s = client.connect()
        for k in range(300):
            s.insert("t", {"k": k, "v": f"old{k}"}, keyspace="ks")
    out = run("nodetool", "snapshot", "-t", "before", "ks")
    assert "Requested creating snapshot(s) for [ks] with snapshot name [before]" in out
    assert re.search(r"ks\.t: 1 SSTable\(s\)", out) and "Snapshot directory: before" in out
    assert "already exists" in run("nodetool", "snapshot", "-t", "before", "ks", code=1)
    out = run("nodetool", "listsnapshots")
    assert re.search(r"^before +ks +t +[\d.]+ (bytes|KiB) +[\d.]+ KiB$", out, re.M), out
    assert "Total TrueDiskSpaceUsed:" in out

    with cluster.client() as client:
        s = client.connect()
        for k in range(0, 300, 2):
            s.insert("t", {"k": k, "v": "new"}, keyspace="ks")
        for k in range(1, 300, 4):
            s.delete("t", {"k": k}, keyspace="ks")
        assert s.get("t", {"k": 0}, keyspace="ks")["v"] == "new"
        assert s.get("t", {"k": 1}, keyspace="ks") is None
    out = run("nodetool", "restoresnapshot", "-t", "before", "ks", "t")
    assert "restored ks.t" in out and "1 SSTable(s)" in out
    with cluster.client() as client:
        s = client.connect()
        assert all(s.get("t", {"k": k}, keyspace="ks") == {"k": k, "v": f"old{k}"} for k in range(300))
    assert "no snapshot nosuch of ks.t" in run("nodetool", "restoresnapshot", "-t", "nosuch", "ks", "t", code=1)

    assert "restart: node1" in run("cluster", "restart", "node1")  # replay must not undo the restore
    with cluster.client() as client:
        s = client.connect()
        assert s.get("t", {"k": 0}, keyspace="ks") == {"k": 0, "v": "old0"}
        assert s.get("t", {"k": 1}, keyspace="ks") == {"k": 1, "v": "old1"}

    out = run("nodetool", "clearsnapshot", "-t", "before")
    assert "removed 1 table snapshot(s)" in out
    assert "There are no snapshots" in run("nodetool", "listsnapshots")
    leftovers = [os.path.join(root, d) for root, dirs, _ in os.walk(cluster.nodes[0].directory)
                 for d in dirs if root.endswith("snapshots")]
    assert leftovers == []


def test_tpstats_compactionstats_and_drain(run, cluster):
    with cluster.client() as client:
        s = client.connect()
        for k in range(120):
            s.insert("t", {"k": k, "v": "x"}, keyspace="ks")
        assert s.get("t", {"k": 5}, keyspace="ks") == {"k": 5, "v": "x"}
    run("nodetool", "flush")
    out = run("nodetool", "tpstats")
    pools = {m[0]: m[1:] for m in re.findall(r"^(\S+) +(\S+) +(\S+) +(\S+) +(\S+) +(\S+)$", out, re.M)}
    assert int(pools["MutationStage"][2]) >= 120 and pools["MutationStage"][:2] == ("n/a", "n/a")
    assert int(pools["Native-Transport-Requests"][2]) >= 121
    assert int(pools["MemtableFlushWriter"][2]) >= 1  # the flush above
    assert pools["CompactionExecutor"][0] == "0" and "HintsDispatcher" in pools and "Mode: NORMAL" in out
    out = run("nodetool", "compactionstats")
    assert "pending tasks: 0" in out and "no compaction running" in out

    out = run("nodetool", "drain")
    assert "drained" in out and "writes are refused" in out
    with cluster.client() as client:
        s = client.connect()
        with pytest.raises(Exception, match="drain"):
            s.insert("t", {"k": 1000, "v": "late"}, keyspace="ks")
        assert s.get("t", {"k": 5}, keyspace="ks") == {"k": 5, "v": "x"}  # reads go on
    assert re.search(r"^UN  127\.0\.0\.\d+:\d+ ", run("nodetool", "status"), re.M)
    assert "Mode: DRAINED" in run("nodetool", "tpstats")
    assert "restart: node1" in run("cluster", "restart", "node1")
    with cluster.client() as client:
        client.connect().insert("t", {"k": 1000, "v": "after restart"}, keyspace="ks")
