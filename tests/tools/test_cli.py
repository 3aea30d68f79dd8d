"""The `dynatable` command line through click's CliRunner: cluster, nodetool, node, demo.

Real node processes; gossip every 250 ms so clusters settle in a second or two.
"""
import re
import tomllib

import pytest

from ring.runtime.config import NodeSettings
from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

FAST = ["--set", "gossip_interval_ms=250", "--set", "phi_convict_threshold=3.0", "--set", "num_tokens=4"]


def test_node_print_default_config_is_valid_toml_with_every_key(run):
    values = tomllib.loads(run("node", "--print-default-config"))
    assert values["port"] == 9100 and values["phi_convict_threshold"] == 8.0
    assert set(values) == set(NodeSettings.__dataclass_fields__)


def test_cluster_lifecycle_and_nodetool(run, tmp_path):
    out = run("cluster", "create", "dev", "-n", "3", *FAST)
    assert "created cluster dev" in out and "node3" in out
    try:
        out = run("cluster", "start")  # no NAME: the current cluster
        assert "3 of 3 node(s) running" in out
        out = run("cluster", "status")
        rows = [ln for ln in out.splitlines() if ln.startswith("node")]
        assert len(rows) == 3 and all(" Up " in r and "Normal" in r and "%" in r for r in rows)
        assert "Datacenter" in out and "Owns" in out

        host = LocalCluster.load("dev", str(tmp_path)).nodes[0].endpoint
        out = run("nodetool", "-h", host, "status")
        assert "Datacenter: datacenter1" in out
        assert len(re.findall(r"^UN  127\.0\.0\.\d+:\d+ ", out, re.M)) == 3
        assert len(set(re.findall(r"^UN  (127\.0\.0\.\d+):", out, re.M))) == 3  # one address per node
        out = run("nodetool", "-h", host, "info")
        assert "Generation No" in out and "datacenter1" in out
        assert not re.search(r" : *$", out, re.M), out  # no empty value lines
        out = run("nodetool", "-h", host, "describecluster")
        assert "Name: dynatable" in out and "Partitioner: Murmur3Partitioner" in out
        versions = re.findall(r"^\s+([0-9a-f-]+): \[(.*)\]$", out, re.M)
        assert len(versions) == 1 and versions[0][1].count("127.0.0.") == 3, out  # schema agreement
        out = run("nodetool", "-h", host, "gossipinfo")
        assert len(re.findall(r"^/127\.0\.0\.\d+:\d+$", out, re.M)) == 3 and re.search(r"^  STATUS:\d+:NORMAL", out, re.M)
        out = run("nodetool", "-h", host, "ring")
        assert len(re.findall(r"^127\.0\.0\.\d+:\d+ +rack1 +Up +Normal", out, re.M)) == 12  # 3 nodes x 4 tokens

        c = LocalCluster.load("dev", str(tmp_path))
        with c.client() as client:
            s = client.connect()
            s.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 2})
            s.create_table("t", {"k": "int", "v": "text"}, primary_key="k", keyspace="ks")
            s.insert("t", {"k": 7, "v": "x"}, keyspace="ks", consistency="ALL")
        out = run("nodetool", "-h", host, "getendpoints", "ks", "t", "7")
        assert len(re.findall(r"^127\.0\.0\.\d+:\d+$", out, re.M)) == 2
        assert "not a valid int" in run("nodetool", "-h", host, "getendpoints", "ks", "t", "seven", code=1)
        out = run("nodetool", "-h", host, "status", "ks")  # effective ownership under RF 2
        owns = [float(x) for x in re.findall(r"([\d.]+)%", out)]
        assert "Owns (effective)" in out and len(owns) == 3 and abs(sum(owns) - 200.0) < 0.5, out
        assert "does not exist" in run("nodetool", "-h", host, "status", "nosuchks", code=1)
        assert "flushed" in run("nodetool", "-h", host, "flush", "ks")
        assert "compaction" in run("nodetool", "-h", host, "compact", "ks", "t")
        out = run("nodetool", "-h", host, "tablestats", "ks")
        assert "Keyspace : ks" in out and "Table: t" in out and "SSTable count" in out
        assert re.search(r"counted since: node start, (\d+[hms] ?)+ ago \(they reset when the node restarts\)", out)
        assert "Unknown keyspace/table nosuchks" in run("nodetool", "-h", host, "tablestats", "nosuchks", code=1)
        out = run("nodetool", "status")  # no -h: a running node of the current cluster
        assert len(re.findall(r"^UN  127\.0\.0\.\d+:\d+ ", out, re.M)) == 3
        out = run("cluster", "nodetool", "node2", "tablestats", "ks")  # ccm's `ccm node2 nodetool ...`
        assert "Keyspace : ks" in out and "Table: t" in out
        assert "no such command" in run("cluster", "nodetool", "node2", "frobnicate", code=2).lower()
        out = run("nodetool", "-h", host, "repair", "ks", "--preview")
        assert "[1/1] ks.t:" in out and "differences reported only" in out
        out = run("nodetool", "-h", host, "repair", "ks", "t", "-pr")
        assert "repair finished" in out and "0 out of sync" in out
        assert "does not have any pending hints" in run("nodetool", "-h", host, "listpendinghints")
        assert "truncated 0 hint(s)" in run("nodetool", "-h", host, "truncatehints")

        assert "kill: node2" in run("cluster", "kill", "node2")
        out = run("cluster", "status")
        assert re.search(r"^CQL \(native_transport_port\): node1 127\.0\.0\.1:\d+, node2 127\.0\.0\.2:\d+", out, re.M)
        assert "not running: node2" in out
        node2 = next(ln for ln in out.splitlines() if ln.startswith("node2"))
        assert " Down " in node2 or "node2: process stopped, peers have not convicted it yet" in out
        assert "restart: node2" in run("cluster", "restart", "node2")
        assert "pause: node1" in run("cluster", "pause", "node1")
        assert "resume: node1" in run("cluster", "resume", "node1")
        assert "no node 'node9'" in run("cluster", "kill", "node9", code=1)
        assert "0 of 3 node(s) running" in run("cluster", "stop")
        assert "no node running" in run("cluster", "status")
    finally:
        out = run("cluster", "remove")
    assert "removed cluster dev" in out
    assert not (tmp_path / "dev").exists()
    assert "create one with `dynatable cluster create NAME`" in run("cluster", "start", code=1)
    assert "no cluster named nope" in run("cluster", "status", "nope", code=1)


def test_nodetool_without_a_node_says_what_to_do(run):
    out = run("nodetool", "-h", "127.0.0.1:1", "status", code=1)
    assert "is a node running at 127.0.0.1:1?" in out
    out = run("nodetool", "status", code=1)  # no -h and no local cluster
    assert "pass -h HOST:PORT" in out and "Traceback" not in out


def test_demo_end_to_end(run):
    out = run("demo")
    assert "UnavailableError" in out and "required 3" in out
    assert "Demo done" in out and "FAILED" not in out
    assert re.search(r"^DN  127\.0\.0\.\d+:\d+", out, re.M)
    assert "removed the cluster's directory" in out
    assert "CQL: cassandra-driver connected" in out and "sent 20 of 20 writes straight to a replica" in out


@pytest.mark.parametrize("argv", [["stress", "--help"], ["stress", "write", "--help"], ["stress", "help"]])
def test_stress_help_anywhere_prints_the_usage(run, argv):
    out = run(*argv)
    assert out.startswith("usage: dynatable stress COMMAND") and "needs a value" not in out


def test_stress_bad_option_is_one_line_and_exit_2(run):
    out = run("stress", "write", "n=notanumber", code=2)
    assert out.startswith("dynatable stress: ") and len(out.strip().splitlines()) == 1


def test_node_refuses_a_corrupt_commit_log_and_starts_when_told_to_skip_it(run, tmp_path):
    """A real node process: acked writes at commitlog_sync=batch, kill -9, one bit flipped inside a
    synced section of the newest segment. The node refuses to start with one line naming the file
    and what to do; with --ignore-replay-errors it starts and serves the rows outside the damage."""
    import glob
    import os
    import subprocess
    import sys

    run("cluster", "create", "cl", "-n", "1", *FAST, "--set", "commitlog_sync=batch")
    c = LocalCluster.load("cl", str(tmp_path))
    nh = c.nodes[0]
    try:
        run("cluster", "start")
        with c.client() as client:
            s = client.connect()
            s.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 1})
            s.create_table("t", {"k": "int", "v": "text"}, primary_key="k", keyspace="ks")
            for k in range(300):
                s.insert("t", {"k": k, "v": "x" * 40}, keyspace="ks")
        run("cluster", "kill", "node1")
        segment = max(glob.glob(os.path.join(nh.data_dir, "**", "CommitLog-*.log"), recursive=True),
                      key=os.path.getsize)
        with open(segment, "r+b") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(size // 2)
            byte = f.read(1)
            f.seek(size // 2)
            f.write(bytes([byte[0] ^ 0x10]))
        node = [sys.executable, "-m", "tools.cli", "node", "--config", nh.config_path]
        refused = subprocess.run(node, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and os.path.basename(segment) in lines[0] and "--ignore-replay-errors" in lines[0], \
            refused.stderr
        proc = subprocess.Popen(node + ["--ignore-replay-errors"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            import time
            deadline, rows = time.monotonic() + 30, None
            while rows is None:
                try:
                    with c.client() as client:
                        rows = list(client.connect("ks").scan_all("t"))
                except Exception:  # noqa: BLE001 - not up yet
                    assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                    time.sleep(0.3)
            assert 0 < len(rows) < 300 and all(r["v"] == "x" * 40 for r in rows)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        assert glob.glob(os.path.join(nh.data_dir, "**", "corrupt", "CommitLog-*.log"), recursive=True)
    finally:
        run("cluster", "remove")


def test_cqlsh_without_a_running_node_says_what_to_do(run):
    assert "create one with `dynatable cluster create NAME`" in run("cqlsh", code=1)
    run("cluster", "create", "idle", "-n", "2")
    out = run("cqlsh", "-e", "DESCRIBE KEYSPACES", code=1)
    assert out.strip().count("\n") == 0 and "start it with `dynatable cluster start`" in out
    assert "node2 is not running; start it with" in run("cqlsh", "node2", code=1)
    assert "no node 'node9' in cluster idle (nodes: node1, node2)" in run("cqlsh", "node9", code=1)
