"""`dynatable stress` end to end against a real 3-node cluster (seconds, not minutes).

The CLI finds the cluster the way `dynatable nodetool` does (the current local cluster under
$DYNATABLE_HOME), creates keyspace1.standard1 / ycsb.usertable on first use, and the figures it
writes agree with what the cluster holds afterwards.
"""
import csv
import json
import re

import pytest
from click.testing import CliRunner

from tools.cli import main
from tools.cluster import LocalCluster

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("stress")
    c = LocalCluster.create("st", n=3, root=str(root), settings=SETTINGS)
    try:
        c.start(timeout_s=60)
        yield root, c
    finally:
        c.remove()


def stress(root, *args, code=0):
    result = CliRunner().invoke(main, ["stress", *args], env={"DYNATABLE_HOME": str(root)}, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_write_then_read_every_key_at_quorum(home, tmp_path):
    root, cluster = home
    out = stress(root, "write", "n=2000", "cl=QUORUM", "-rate", "threads=16", "-schema", "replication(factor=3)",
                 "--json", str(tmp_path / "w.json"), "--csv", str(tmp_path / "w.csv"), "-seed", "1")
    assert "time s" in out and "Op rate" in out and "Total errors              :          0" in out
    doc = json.loads((tmp_path / "w.json").read_text())
    total = doc["phases"][0]["total"]
    assert total["ops"] == 2000 and total["errors"] == {} and total["returns"] == {"OK": 2000}
    rows = list(csv.DictReader((tmp_path / "w.csv").read_text().splitlines()))
    assert sum(int(r["ops"]) for r in rows) == 2000

    out = stress(root, "read", "n=2000", "cl=QUORUM", "-pop", "seq=1..2000", "--json", str(tmp_path / "r.json"))
    total = json.loads((tmp_path / "r.json").read_text())["phases"][0]["total"]
    assert total["returns"] == {"OK": 2000} and total["errors"] == {}     # every key written is read back

    with cluster.client() as client:
        row = client.connect("keyspace1").get("standard1", {"key": b"0000001234"}, consistency="ALL")
    assert sorted(row) == ["C0", "C1", "C2", "C3", "C4", "key"] and all(len(row[f"C{i}"]) == 34 for i in range(5))


def test_mixed_at_a_fixed_rate(home, tmp_path):
    root, _ = home
    plot = tmp_path / "m.png"
    try:
        import matplotlib  # noqa: F401
        has_mpl = True
    except ImportError:
        has_mpl = False
    args = ["mixed", "ratio(write=1,read=3)", "duration=2s", "cl=QUORUM", "-rate", "threads=8", "throttle=300/s",
            "-pop", "dist=uniform(1..2000)", "--json", str(tmp_path / "m.json"), "--plot", str(plot)]
    if not has_mpl:
        assert "pip install 'dynatable[bench]'" in stress(root, *args, code=2)
        return
    out = stress(root, *args)
    assert "intended start" in out and "Service time" in out
    ph = json.loads((tmp_path / "m.json").read_text())["phases"][0]
    assert 500 <= ph["total"]["ops"] <= 601                        # 2 s at 300/s, never ahead of the schedule
    assert set(ph["by_kind"]) == {"READ", "WRITE"} and ph["total"]["errors"] == {}
    assert ph["by_kind"]["READ"]["ops"] > ph["by_kind"]["WRITE"]["ops"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ycsb_workloads_print_ycsb_lines(home):
    root, _ = home
    out = stress(root, "ycsb", "--workload", "a", "-p", "recordcount=300", "-p", "operationcount=300",
                 "-threads", "8", "cl=QUORUM", "--quiet")
    assert "[INSERT], Operations, 300" in out and "[INSERT], Return=OK, 300" in out
    reads = int(re.search(r"^\[READ\], Operations, (\d+)$", out, re.MULTILINE)[1])
    updates = int(re.search(r"^\[UPDATE\], Operations, (\d+)$", out, re.MULTILINE)[1])
    assert reads + updates == 300 and re.search(r"^\[READ\], Return=OK, " + str(reads) + "$", out, re.MULTILINE)
    out = stress(root, "ycsb", "--workload", "e", "run", "-p", "recordcount=300", "-p", "operationcount=40",
                 "-threads", "4", "--quiet")
    assert "[SCAN], Operations" in out and "Return=ERROR" not in out


def test_no_cluster_there_says_what_to_do(tmp_path):
    out = CliRunner().invoke(main, ["stress", "write", "n=10", "-node", "127.0.0.1:1"],
                             env={"DYNATABLE_HOME": str(tmp_path)})
    assert out.exit_code == 1 and "-node HOST:PORT" in out.output


def test_an_existing_table_of_another_shape_is_refused_before_any_load(home):
    root, cluster = home
    with cluster.client() as client:
        s = client.connect()
        s.create_keyspace("other", {"class": "SimpleStrategy", "replication_factor": 1})
        s.create_table("standard1", {"key": "int", "v": "text"}, primary_key="key", keyspace="other")
    result = CliRunner().invoke(main, ["stress", "write", "n=10", "-schema", "keyspace=other"],
                                env={"DYNATABLE_HOME": str(root)})
    assert result.exit_code == 1 and "-schema keyspace=NAME" in result.output and "key blob" in result.output
