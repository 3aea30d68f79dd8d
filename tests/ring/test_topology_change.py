"""Bootstrap, decommission and removenode in the simulator: writes keep flowing at QUORUM during
each change, and afterwards every replica of the new ring holds every acknowledged row."""
from __future__ import annotations

import pytest

from engine.mutation import partition_key_bytes
from engine.token import token as token_of
from engine.errors import InvalidRequest
from ring.runtime.sim import Simulation

FAST = {"gossip_interval_ms": 200, "phi_convict_threshold": 4.0, "ring_delay_ms": 1500,
        "write_request_timeout_ms": 1000, "num_tokens": 8}


def _cluster(seed: int, nodes: int = 3, rf: int = 3) -> Simulation:
    sim = Simulation(seed, nodes, node_options=FAST)
    sim.run_until(5000, stop=sim.converged)
    sim.request("n1", "create_keyspace", name="ks",
                replication={"class": "SimpleStrategy", "replication_factor": rf})
    sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int", "v": "text"},
                primary_key="k")
    sim.run_for(2000)
    return sim


class Writer:
    """QUORUM writes from rotating coordinators; remembers what was acknowledged."""

    def __init__(self, sim: Simulation, coordinators: list[str]):
        self.sim, self.coordinators = sim, coordinators
        self.acked: dict[int, str] = {}
        self.failed = 0
        self.next_key = 0

    def write_for(self, ms: int, every_ms: int = 20) -> None:
        end = self.sim.now_ms + ms
        in_flight = {}
        while self.sim.now_ms < end:
            k = self.next_key
            self.next_key += 1
            coordinator = self.coordinators[k % len(self.coordinators)]
            rid = self.sim.submit(coordinator, "insert", keyspace="ks", table="kv", row={"k": k, "v": f"v{k}"},
                                  consistency="QUORUM")
            in_flight[rid] = k
            self.sim.run_for(every_ms)
            self._collect(in_flight)
        self.sim.run_for(3000)
        self._collect(in_flight)

    def _collect(self, in_flight: dict) -> None:
        for rid in list(in_flight):
            reply = self.sim.replies.pop(rid, None)
            if reply is None:
                continue
            k = in_flight.pop(rid)
            if reply.error is None:
                self.acked[k] = f"v{k}"
            else:
                self.failed += 1


def _missing(sim: Simulation, writer: Writer, replicas_of) -> list:
    """(key, replica) pairs where a replica of the final ring lacks an acknowledged row."""
    table = sim.nodes["n1"].store.table("ks", "kv") if sim.nodes["n1"].store else None
    out = []
    for k, v in sorted(writer.acked.items()):
        t = table or next(sn.store for sn in sim.nodes.values() if sn.store).table("ks", "kv")
        token = token_of(partition_key_bytes(t, {"k": k}))
        for name in replicas_of(token):
            row = sim.local_row(name, "ks", "kv", {"k": k})
            if row is None or row.get("v") != v:
                out.append((k, name))
    return out


def _replicas_by(sim: Simulation, observer: str):
    node = sim.nodes[observer].node
    by_ep = {sn.endpoint: name for name, sn in sim.nodes.items()}
    return lambda token: [by_ep[ep] for ep in node.replicas("ks", token)]


def test_bootstrap_under_quorum_writes_loses_nothing():
    sim = _cluster(seed=11)
    writer = Writer(sim, ["n1", "n2", "n3"])
    writer.write_for(1000)
    new = sim.add_node()
    writer.write_for(6000)  # the join: ring delay, BOOT, ring delay, streaming, NORMAL
    assert sim.nodes[new].node.mode == "NORMAL", sim.nodes[new].node.bootstrap.progress()
    writer.write_for(500)
    sim.run_for(3000)
    assert writer.failed == 0
    assert len(writer.acked) > 200
    # every node sees the new node in the ring, and it owns data
    for name in ("n1", "n2", "n3"):
        assert sim.nodes[new].endpoint in sim.nodes[name].node.ring.endpoints
    assert _missing(sim, writer, _replicas_by(sim, "n1")) == []
    progress = sim.nodes[new].node.bootstrap.summary
    assert progress["partitions"] > 0 and progress["ranges_done"] == progress["ranges"]
    tokens = sim.nodes[new].node.tokens
    sim.crash(new, lose_unsynced=False)
    sim.restart(new)  # a bootstrapped node restarts NORMAL, with the tokens it chose
    assert sim.nodes[new].node.mode == "NORMAL" and sim.nodes[new].node.bootstrap is None
    assert sim.nodes[new].node.tokens == tokens
    sim.close()


def test_bootstrap_that_fails_resumes_and_completes():
    sim = _cluster(seed=12)
    writer = Writer(sim, ["n1", "n2", "n3"])
    writer.write_for(1500)
    new = sim.add_node()
    sim.run_until(sim.now_ms + 20_000, stop=lambda: sim.nodes[new].node.bootstrap.phase == "streaming")
    sim.partition({new}, {"n1", "n2", "n3"})  # streaming from every source now fails
    sim.run_for(5000)
    assert sim.nodes[new].node.mode == "JOINING"
    sim.heal()
    sim.run_until(sim.now_ms + 30_000, stop=lambda: sim.nodes[new].node.mode == "NORMAL")
    assert sim.nodes[new].node.mode == "NORMAL"
    sim.run_for(3000)
    assert _missing(sim, writer, _replicas_by(sim, "n1")) == []
    sim.close()


def test_decommission_under_quorum_writes_loses_nothing():
    sim = _cluster(seed=13, nodes=4)
    writer = Writer(sim, ["n2", "n3", "n4"])
    writer.write_for(1500)
    rid = sim.submit("n1", "decommission")
    writer.write_for(4000)
    reply = sim.wait(rid, 30_000)
    assert reply.error is None, reply.error
    assert reply.result["partitions"] > 0
    writer.write_for(500)
    sim.run_for(3000)
    assert writer.failed == 0
    assert sim.nodes["n1"].node.mode == "DECOMMISSIONED"
    for name in ("n2", "n3", "n4"):
        assert sim.nodes["n1"].endpoint not in sim.nodes[name].node.ring.endpoints
    sim.crash("n1")
    assert _missing(sim, writer, _replicas_by(sim, "n2")) == []
    with pytest.raises(Exception, match="decommissioned"):
        sim.restart("n1")
    sim.close()


def test_decommission_refused_below_replication_factor():
    sim = _cluster(seed=14, nodes=3)
    with pytest.raises(InvalidRequest, match="Not enough live nodes"):
        sim.request("n1", "decommission")
    assert sim.nodes["n1"].node.mode == "NORMAL"
    sim.close()


def test_removenode_rereplicates_a_dead_nodes_ranges():
    sim = _cluster(seed=15, nodes=4)
    writer = Writer(sim, ["n1", "n2", "n3"])
    writer.write_for(1500)
    sim.crash("n4")
    sim.run_for(5000)
    with pytest.raises(InvalidRequest, match="Host ID not found"):
        sim.request("n1", "removenode", host_id="nope")
    rid = sim.submit("n1", "removenode", host_id="host-n4")
    writer.write_for(3000)
    reply = sim.wait(rid, 30_000)
    assert reply.error is None, reply.error
    sim.run_for(3000)
    assert writer.failed == 0
    for name in ("n1", "n2", "n3"):
        assert sim.nodes["n4"].endpoint not in sim.nodes[name].node.ring.endpoints
    assert _missing(sim, writer, _replicas_by(sim, "n1")) == []
    sim.close()


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_join_and_leave_on_a_lossy_network_keep_every_quorum_write(seed):
    """Messages dropped (5%), duplicated and delayed while a node joins and another leaves:
    every write acknowledged at QUORUM is read back at QUORUM afterwards."""
    sim = _cluster(seed=seed, nodes=4)

    def lossy():
        for a in sim.nodes:
            for b in sim.nodes:
                if a != b:
                    link = sim.link(a, b)
                    link.drop, link.dup, link.delay_ms = 0.05, 0.02, (1, 30)

    lossy()
    writer = Writer(sim, ["n2", "n3", "n4"])
    writer.write_for(1000)
    new = sim.add_node()
    lossy()
    writer.write_for(8000)
    sim.run_until(sim.now_ms + 60_000, stop=lambda: sim.nodes[new].node.mode == "NORMAL")
    assert sim.nodes[new].node.mode == "NORMAL"
    rid = sim.submit("n1", "decommission")
    writer.write_for(4000)
    reply = sim.wait(rid, 60_000)
    assert reply.error is None, reply.error
    sim.heal()
    sim.run_for(5000)
    assert len(writer.acked) > 100
    lost = []
    for k, v in sorted(writer.acked.items()):
        row = sim.request("n2", "get", keyspace="ks", table="kv", key={"k": k}, consistency="QUORUM")
        if (row or {}).get("v") != v:
            lost.append(k)
    assert lost == []
    sim.close()


def test_cleanup_after_a_join_drops_only_what_moved_away():
    sim = _cluster(seed=16, rf=1)
    writer = Writer(sim, ["n1", "n2", "n3"])
    writer.write_for(2000)
    new = sim.add_node()
    sim.run_until(sim.now_ms + 30_000, stop=lambda: sim.nodes[new].node.mode == "NORMAL")
    sim.run_for(3000)
    node1 = sim.nodes["n1"]
    table = node1.store.table("ks", "kv")

    def local_keys(name):
        return {row["k"] for row in sim.nodes[name].store.scan_all("ks", "kv")}

    before = local_keys("n1")
    result = sim.request("n1", "cleanup", keyspace="ks")
    after = local_keys("n1")
    owned = {k for k in before
             if node1.node.replicas("ks", token_of(partition_key_bytes(table, {"k": k})))[0] == node1.endpoint}
    assert after == owned and len(after) < len(before)
    assert result["partitions_dropped"]["ks.kv"] == len(before) - len(after)
    for k, v in writer.acked.items():  # every row is still there, on its owner
        assert (sim.request("n2", "get", keyspace="ks", table="kv", key={"k": k}, consistency="ONE") or {})["v"] == v
    sim.close()


def test_cleanup_is_refused_while_a_node_joins():
    sim = _cluster(seed=17)
    new = sim.add_node()
    sim.run_until(sim.now_ms + 30_000, stop=lambda: sim.nodes[new].node.bootstrap.phase == "announced")
    sim.run_until(sim.now_ms + 1_400, stop=lambda: sim.nodes["n1"].node.topology.moving)  # gossip spreads BOOT
    assert sim.nodes[new].node.mode == "JOINING"
    with pytest.raises(InvalidRequest, match="Not safe to run cleanup"):
        sim.request("n1", "cleanup")
    sim.close()
