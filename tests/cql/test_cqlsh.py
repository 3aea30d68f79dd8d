"""A real 3-node cluster driven by cassandra-driver (ALTER TABLE / KEYSPACE, SCHEMA_CHANGE events,
dropped-column semantics) and by cqlsh 6.2.2 through `dynatable cqlsh NODE`: `-e` for DESCRIBE,
SELECT, CONSISTENCY, PAGING, COPY TO / COPY FROM, and once an interactive session in a
pseudo-terminal (pexpect). The cluster is shared by the module; DYNATABLE_HOME points at it."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
import time

import pytest

from cassandra.cluster import Cluster

from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 8.0, "num_tokens": 4, "log_level": "WARNING"}
DYNATABLE = os.path.join(os.path.dirname(sys.executable), "dynatable")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("clusters"))
    c = LocalCluster.create("cqlsh", n=3, root=root, settings=SETTINGS)
    with c:
        c.start(timeout_s=60)
        yield c
    c.remove()


@pytest.fixture(scope="module")
def session(cluster):
    host, port = cluster.nodes[0].cql_endpoint.rsplit(":", 1)
    dc = Cluster([nh.cql_endpoint.rsplit(":", 1)[0] for nh in cluster.nodes], port=int(port))
    s = dc.connect()
    s.execute("CREATE KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
    s.execute("CREATE TABLE shop.items (k int, c int, v text, w int, PRIMARY KEY (k, c))")
    yield s
    dc.shutdown()


def cqlsh(cluster, *args, node="node2", timeout=60) -> str:
    env = dict(os.environ, DYNATABLE_HOME=cluster.root, HOME=cluster.root)   # cqlsh keeps ~/.cassandra
    p = subprocess.run([DYNATABLE, "cqlsh", node, *args], capture_output=True, text=True, env=env, timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert check()


def test_alter_through_the_driver_with_events_and_dropped_columns(cluster, session):
    port = int(cluster.nodes[2].cql_endpoint.rsplit(":", 1)[1])
    other = Cluster([cluster.nodes[2].cql_endpoint.rsplit(":", 1)[0]], port=port)   # control connection on node3
    other.connect()
    try:
        session.execute("INSERT INTO shop.items (k, c, v, w) VALUES (1, 1, 'before', 1)")
        session.execute("ALTER TABLE shop.items ADD extra text")
        wait_for(lambda: "extra" in other.metadata.keyspaces["shop"].tables["items"].columns)
        session.execute("ALTER TABLE shop.items DROP v")
        wait_for(lambda: "v" not in other.metadata.keyspaces["shop"].tables["items"].columns)
        session.execute("ALTER TABLE shop.items ADD v text")
        assert session.execute("SELECT k, c, v, w FROM shop.items WHERE k = 1").one() == (1, 1, None, 1)
        session.execute("ALTER TABLE shop.items WITH gc_grace_seconds = 100")
        wait_for(lambda: other.metadata.keyspaces["shop"].tables["items"].options["gc_grace_seconds"] == 100)
        session.execute("ALTER KEYSPACE shop WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
        wait_for(lambda: other.metadata.keyspaces["shop"].replication_strategy.replication_factor == 2)
        assert session.cluster.metadata.keyspaces["shop"].replication_strategy.replication_factor == 2
        assert session.execute("SELECT column_name FROM system_schema.dropped_columns WHERE keyspace_name = 'shop' "
                               "AND table_name = 'items'").one() == ("v",)
    finally:
        other.shutdown()


def fill(session):
    for i in range(30):
        session.execute("INSERT INTO shop.items (k, c, w) VALUES (%s, %s, %s)", (i % 3, i, i))


def test_cqlsh_describe_select_consistency_paging(cluster, session):
    fill(session)
    out = cqlsh(cluster, "-e", "DESCRIBE KEYSPACES")
    assert "shop" in out and "system_schema" in out
    out = cqlsh(cluster, "-e", "DESCRIBE TABLE shop.items")
    assert "CREATE TABLE shop.items (" in out and "PRIMARY KEY (k, c)" in out and "gc_grace_seconds = 100" in out
    out = cqlsh(cluster, "-e", "DESC SCHEMA")
    assert "CREATE KEYSPACE shop WITH replication" in out and "CREATE TABLE shop.items" in out
    out = cqlsh(cluster, "-e", "CONSISTENCY QUORUM; PAGING 7; SELECT k, c, w FROM shop.items WHERE k = 2;")
    assert "Consistency level set to QUORUM." in out and "Page size: 7" in out
    assert "(10 rows)" in out and " 2 | 29 | 29" in out
    out = cqlsh(cluster, "-e", "CONSISTENCY ALL; SELECT count(*) FROM shop.items;", node="node3")
    assert "Consistency level set to ALL." in out and "30" in out


def test_cqlsh_copy_to_and_from(cluster, session, tmp_path):
    fill(session)
    path = tmp_path / "items.csv"
    out = cqlsh(cluster, "-e", f"COPY shop.items (k, c, w) TO '{path}' WITH HEADER = true")
    assert "30 rows exported" in out
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and {int(r["c"]) for r in rows} == set(range(30))
    session.execute("CREATE TABLE shop.copy (k int, c int, w int, PRIMARY KEY (k, c))")
    out = cqlsh(cluster, "-e", f"COPY shop.copy (k, c, w) FROM '{path}' WITH HEADER = true", node="node1")
    assert "30 rows imported" in out
    got = sorted(session.execute("SELECT k, c, w FROM shop.copy"))
    assert got == sorted((int(r["k"]), int(r["c"]), int(r["w"])) for r in rows)


def test_cqlsh_interactive_session(cluster, session):
    pexpect = pytest.importorskip("pexpect")
    fill(session)
    env = dict(os.environ, DYNATABLE_HOME=cluster.root, HOME=cluster.root, TERM="dumb")
    child = pexpect.spawn(DYNATABLE, ["cqlsh"], env=env, encoding="utf-8", timeout=30)
    try:
        child.expect(r"cqlsh> ")
        child.sendline("USE shop;")
        child.expect(r"cqlsh:shop> ")
        child.sendline("SELECT k, c, w FROM items WHERE k = 1 AND c = 4;")
        child.expect(r"\(1 rows\)")
        assert " 1 | 4 | 4\r\n" in child.before
        child.expect(r"cqlsh:shop> ")
        child.sendline("PAGING 4;")                 # in a terminal cqlsh pages: ---MORE--- per 4 rows
        child.expect(r"Page size: 4")
        child.sendline("SELECT c FROM items WHERE k = 1;")
        for _ in range(2):
            child.expect(r"---MORE---")
            child.sendline("")
        child.expect(r"\(10 rows\)")
        child.expect(r"cqlsh:shop> ")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
