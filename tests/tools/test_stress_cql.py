"""`dynatable stress ... --mode cql` end to end: cassandra-driver against a real 3-node cluster
that requires a login (PasswordAuthenticator), the figures checked against what the cluster holds
(read back through the own protocol, and by the native-mode stress), and a YCSB run with scans."""
import json
import time

import pytest
from click.testing import CliRunner

from tools.cli import main
from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4,
            "authenticator": "PasswordAuthenticator", "superuser_setup_delay_ms": 300}
LOGIN = ["-mode", "cql", "user=cassandra", "password=cassandra"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("stress_cql")
    c = LocalCluster.create("sc", n=3, root=str(root), settings=SETTINGS)
    try:
        c.start(timeout_s=60)
        _wait_for_default_superuser(c)
        yield root, c
    finally:
        c.remove()


def _wait_for_default_superuser(c, timeout_s=30):
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster, NoHostAvailable
    host, port = c.nodes[0].cql_endpoint.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while True:
        dc = Cluster([host], port=int(port), auth_provider=PlainTextAuthProvider("cassandra", "cassandra"))
        try:
            dc.connect()
            return
        except NoHostAvailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
        finally:
            dc.shutdown()


def stress(root, *args, code=0):
    result = CliRunner().invoke(main, ["stress", *args], env={"DYNATABLE_HOME": str(root)}, catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def test_cql_write_then_read_agree_with_the_cluster(home, tmp_path):
    root, cluster = home
    out = stress(root, "write", "n=1500", "cl=QUORUM", "-rate", "threads=16", "-schema", "replication(factor=3)",
                 "--mode", "cql", *LOGIN, "--json", str(tmp_path / "w.json"), "-seed", "1")
    assert "time s" in out and "Op rate" in out and "Total errors              :          0" in out
    assert cluster.nodes[0].cql_endpoint in out                 # it went to the CQL port
    total = json.loads((tmp_path / "w.json").read_text())["phases"][0]["total"]
    assert total["ops"] == 1500 and total["errors"] == {} and total["returns"] == {"OK": 1500}

    stress(root, "read", "n=1500", "cl=QUORUM", "-pop", "seq=1..1500", *LOGIN, "--json", str(tmp_path / "r.json"))
    total = json.loads((tmp_path / "r.json").read_text())["phases"][0]["total"]
    assert total["returns"] == {"OK": 1500} and total["errors"] == {}     # every key written is read back
    stress(root, "read", "n=200", "cl=QUORUM", "-pop", "seq=1501..1700", *LOGIN, "--json", str(tmp_path / "m.json"))
    total = json.loads((tmp_path / "m.json").read_text())["phases"][0]["total"]
    assert total["returns"] == {"NOT_FOUND": 200}                       # and nothing more is there

    # the same rows, seen through the own protocol: native-mode stress and a plain get
    stress(root, "read", "n=1500", "cl=ALL", "-pop", "seq=1..1500", "--json", str(tmp_path / "n.json"))
    total = json.loads((tmp_path / "n.json").read_text())["phases"][0]["total"]
    assert total["returns"] == {"OK": 1500}
    with cluster.client() as client:
        row = client.connect("keyspace1").get("standard1", {"key": b"0000001234"}, consistency="ALL")
    assert sorted(row) == ["C0", "C1", "C2", "C3", "C4", "key"] and all(len(row[f"C{i}"]) == 34 for i in range(5))


def test_cql_ycsb_with_scans_and_a_bad_login(home, tmp_path):
    root, _ = home
    out = stress(root, "ycsb", "--workload", "e", "-p", "recordcount=300", "-p", "operationcount=300",
                 "-threads", "8", *LOGIN, "--json", str(tmp_path / "y.json"))
    assert "[SCAN], Operations" in out
    phases = json.loads((tmp_path / "y.json").read_text())["phases"]
    assert [p["phase"] for p in phases] == ["load", "run"]
    assert all(p["total"]["errors"] == {} for p in phases) and phases[1]["by_kind"]["SCAN"]["ops"] > 0
    out = stress(root, "write", "n=10", "-mode", "cql", "user=cassandra", "password=wrong", code=1)
    assert "and/or password are incorrect" in out and out.count("\n") <= 2
