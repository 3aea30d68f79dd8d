"""CREATE through the cluster: IF NOT EXISTS is a no-op when the keyspace or table exists, its
absence AlreadyExists (Cassandra's rule); an NTS map naming an unknown datacenter is refused."""
import pytest

from engine.errors import AlreadyExists, InvalidRequest
from ring.ops.schema import check_datacenters
from ring.runtime.sim import Simulation

SIMPLE = {"class": "SimpleStrategy", "replication_factor": 1}


def test_if_not_exists_is_a_no_op_and_its_absence_an_error():
    sim = Simulation(5, 3, node_options={"gossip_interval_ms": 200})
    sim.run_until(5000, stop=sim.converged)
    versions = []
    for _ in range(2):
        sim.request("n1", "create_keyspace", name="ks", replication=SIMPLE, if_not_exists=True)
        versions.append(sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int"},
                                    primary_key="k", if_not_exists=True)["schema_version"])
    assert versions[0] == versions[1]
    with pytest.raises(AlreadyExists, match="Cannot add already existing table ks.kv") as e:
        sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int", "v": "text"},
                    primary_key="k")
    assert (e.value.keyspace, e.value.table) == ("ks", "kv")
    assert set(sim.nodes["n1"].store.table("ks", "kv").by_name) == {"k"}  # the old schema stays
    with pytest.raises(AlreadyExists, match="Cannot add already existing keyspace ks") as e:
        sim.request("n2", "create_keyspace", name="ks", replication=SIMPLE)
    assert (e.value.keyspace, e.value.table) == ("ks", "")
    assert isinstance(e.value, InvalidRequest)  # an `except InvalidRequest` still catches it
    sim.close()


def test_nts_naming_an_unknown_datacenter_is_refused_with_the_known_ones():
    sim = Simulation(6, 4, dcs=["dc1", "dc1", "dc2", "dc2"], node_options={"gossip_interval_ms": 200})
    sim.run_until(8000, stop=sim.converged)
    with pytest.raises(InvalidRequest) as e:
        sim.request("n1", "create_keyspace", name="shop",
                    replication={"class": "NetworkTopologyStrategy", "datacenter1": 3, "dc2": 1})
    assert str(e.value) == ("Unrecognized strategy option {datacenter1} passed to NetworkTopologyStrategy "
                            "for keyspace shop; known datacenters: dc1, dc2")
    assert "shop" not in sim.nodes["n1"].store.keyspaces
    sim.request("n1", "create_keyspace", name="shop",
                replication={"class": "NetworkTopologyStrategy", "dc1": 2, "dc2": 1})  # both known
    assert "shop" in sim.nodes["n1"].store.keyspaces
    sim.close()


def test_check_datacenters_is_pure():
    check_datacenters("ks", {"dc1": 3}, {"dc1", "dc2"})
    check_datacenters("ks", {}, {"dc1"})
    with pytest.raises(InvalidRequest, match=r"\{a, b\} passed .* keyspace ks; known datacenters: c"):
        check_datacenters("ks", {"b": 1, "a": 1, "c": 1}, {"c"})
