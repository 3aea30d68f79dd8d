"""tools/cluster/ with real node processes: create, start, kill, restart, pause, remove.

One 3-node cluster for the whole module, scenarios in order. Gossip every 250 ms and
phi_convict_threshold 3 convict a silent node in ~2 s (defaults: 1 s and 8, ~18 s).
"""
import os
import tomllib

import pytest

from ring.runtime import config as config_mod
from tools.cluster import ClusterError, LocalCluster, parse_datacenters

pytestmark = pytest.mark.slow

SETTINGS = {"gossip_interval_ms": 250, "phi_convict_threshold": 3.0, "num_tokens": 4}


def test_create_writes_configs_and_seeds_per_datacenter(tmp_path):
    c = LocalCluster.create("two-dc", datacenters="dc1:2,dc2:1", root=str(tmp_path), base_port=19500,
                            settings={"gossip_interval_ms": 500})
    assert [nh.name for nh in c.nodes] == ["node1", "node2", "node3"]
    assert [(nh.datacenter, nh.rack) for nh in c.nodes] == [("dc1", "rack1"), ("dc1", "rack1"), ("dc2", "rack1")]
    # as ccm: node N on 127.0.0.N, every node on the same port
    assert [nh.endpoint for nh in c.nodes] == ["127.0.0.1:19500", "127.0.0.2:19500", "127.0.0.3:19500"]
    s = config_mod.load(c.nodes[2].config_path)
    assert s.seeds == ["127.0.0.1:19500", "127.0.0.3:19500"] and s.gossip_interval_ms == 500
    assert s.listen_address == "127.0.0.3"
    assert s.data_directory == c.nodes[2].data_dir == os.path.join(c.path, "node3", "data")
    with open(os.path.join(c.path, "cluster.toml"), "rb") as f:
        assert tomllib.load(f)["datacenters"] == "dc1:2,dc2:1"
    assert LocalCluster.current_name(str(tmp_path)) == "two-dc"
    assert [nh.endpoint for nh in LocalCluster.load("two-dc", str(tmp_path)).nodes] == c.contact_points()
    assert c.node("node2") is c.nodes[1] and c.node(0) is c.nodes[0] and c.node("3") is c.nodes[2]
    assert not any(nh.is_running() for nh in c.nodes) and c.nodes[0].pid is None
    with pytest.raises(ClusterError, match="already exists"):
        LocalCluster.create("two-dc", root=str(tmp_path))
    with pytest.raises(ClusterError, match="create it with `dynatable cluster create nope`"):
        LocalCluster.load("nope", str(tmp_path))
    with pytest.raises(ClusterError, match="chosen per node"):
        LocalCluster.create("x", root=str(tmp_path), settings={"port": 1})
    with pytest.raises(ClusterError, match="NAME:COUNT"):
        parse_datacenters("dc1=3")
    c.remove()
    assert not os.path.exists(c.path) and LocalCluster.current_name(str(tmp_path)) is None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LocalCluster.create("cm", n=3, root=str(tmp_path_factory.mktemp("clusters")), settings=SETTINGS)
    with c:
        c.start(timeout_s=30)
        yield c
    c.remove()


def test_started_cluster_shows_three_up_normal_rows(cluster):
    rows = cluster.status()
    assert sorted(r["endpoint"] for r in rows) == sorted(cluster.contact_points())
    assert all(r["up"] and r["state"] == "NORMAL" and r["tokens"] == 4 for r in rows)
    assert abs(sum(r["owns"] for r in rows) - 1.0) < 1e-6
    assert all(nh.is_running() and nh.pid for nh in cluster.nodes)
    for nh in cluster.nodes:
        assert os.path.isfile(os.path.join(nh.data_dir, "host_id"))
    with open(cluster.nodes[0].log_path) as f:
        assert "listening on" in f.read()


def test_killed_node_is_down_for_the_others_and_up_after_restart(cluster):
    node3 = cluster.node("node3")
    old_pid = node3.pid
    cluster.kill(node3)
    assert not node3.is_running() and node3.pid is None
    with pytest.raises(OSError):
        os.kill(old_pid, 0)
    cluster.wait_for_down(node3, timeout_s=20)
    for observer in cluster.nodes[:2]:
        row = next(r for r in cluster.ask(observer, "status") if r["endpoint"] == node3.endpoint)
        assert not row["up"]
    cluster.restart(node3)
    assert node3.is_running() and node3.pid != old_pid
    cluster.wait_for_up(node3, timeout_s=20)
    assert all(r["up"] for r in cluster.ask(node3, "status"))


def test_paused_node_is_convicted_and_comes_back_after_resume(cluster):
    node2 = cluster.node("node2")
    cluster.pause(node2)
    try:
        assert node2.is_paused() and node2.is_running()
        cluster.wait_for_down(node2, observer=["node1", "node3"], timeout_s=20)
    finally:
        cluster.resume(node2)
    assert not node2.is_paused()
    cluster.wait_for_up(node2, timeout_s=20)
    assert all(r["up"] for r in cluster.status())


def test_wait_until_names_what_it_waited_for(cluster):
    with pytest.raises(TimeoutError, match="the moon"):
        cluster.wait_until(lambda: False, timeout_s=0.3, interval_s=0.05, what="the moon")


def test_remove_leaves_no_process_and_no_directory(tmp_path):
    c = LocalCluster.create("gone", n=2, root=str(tmp_path), settings=SETTINGS)
    c.start(timeout_s=30)
    pids = [nh.pid for nh in c.nodes]
    assert all(pids)
    c.pause("node2")  # a paused node must still go away
    c.remove()
    for pid in pids:
        with pytest.raises(OSError):
            os.kill(pid, 0)
    assert not os.path.exists(c.path)


def test_a_node_that_cannot_start_is_reported_with_its_log(tmp_path):
    c = LocalCluster.create("bad", n=1, root=str(tmp_path), settings=SETTINGS)
    with open(c.nodes[0].config_path, "a") as f:
        f.write("no_such_key = 1\n")
    with c, pytest.raises(ClusterError, match="no_such_key"):
        c.start(timeout_s=20)
    assert not c.nodes[0].is_running()
    c.remove()
