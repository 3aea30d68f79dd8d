"""CREATE ... IF NOT EXISTS through the cluster: a no-op when the keyspace or table exists."""
import pytest

from engine.errors import InvalidRequest
from ring.runtime.sim import Simulation


def test_if_not_exists_is_a_no_op_and_its_absence_an_error():
    sim = Simulation(5, 3, node_options={"gossip_interval_ms": 200})
    sim.run_until(5000, stop=sim.converged)
    versions = []
    for _ in range(2):
        sim.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy",
                                                                    "replication_factor": 1}, if_not_exists=True)
        versions.append(sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int"},
                                    primary_key="k", if_not_exists=True)["schema_version"])
    assert versions[0] == versions[1]
    with pytest.raises(InvalidRequest, match="already exists"):
        sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int"}, primary_key="k")
    with pytest.raises(InvalidRequest, match="already exists"):
        sim.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy",
                                                                    "replication_factor": 1})
    sim.close()
