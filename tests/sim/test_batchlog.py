"""LOGGED batches through the batchlog, in the simulator (ring/batchlog.py, ring/ops/batchlog.py).

The coordinator writes the batch to two other nodes' system.batches, applies it, removes the
entries. With the injected fault `batchlog_coordinator_dies` it goes silent right after the
batchlog write; then it is crashed, and the batch must be applied in full by the survivors'
replay: before the replay no row of it exists anywhere, after it every row does (never half).
"""
import pytest

from ring import batchlog
from ring.cql.responses import Unavailable, WriteTimeout
from ring.cql.result import Rows
from ring.runtime.sim import Simulation
from tests.cql.cql_sim import CqlSim

FAST = {"gossip_interval_ms": 200, "phi_convict_threshold": 4.0, "write_request_timeout_ms": 1000,
        "batchlog_replay_interval_ms": 1000}
BATCH = ("BEGIN BATCH INSERT INTO ks.t (k, v) VALUES (1, 'a'); INSERT INTO ks.t (k, v) VALUES (2, 'b'); "
         "UPDATE ks.t SET v = 'c' WHERE k = 3; INSERT INTO ks.u (k, w) VALUES (4, 40) APPLY BATCH")
ROWS = [("t", 1, "v", "a"), ("t", 2, "v", "b"), ("t", 3, "v", "c"), ("u", 4, "w", 40)]


def cluster(seed: int, nodes: int = 3, rf: int = 3, **options) -> CqlSim:
    sim = Simulation(seed, nodes, node_options={**FAST, **options})
    sim.run_for(3000)
    c = CqlSim(sim)
    c.ok("n1", "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}" % rf)
    c.ok("n1", "CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
    c.ok("n1", "CREATE TABLE ks.u (k int PRIMARY KEY, w int)")
    c.agree()
    return c


def entries(sim, node: str) -> list:
    return list(sim.nodes[node].store.scan_all(batchlog.SYSTEM, batchlog.TABLE))


def present(sim, node: str) -> list[bool]:
    out = []
    for table, k, column, value in ROWS:
        row = sim.local_row(node, "ks", table, {"k": k}, writetime=False)
        out.append(row is not None and row.get(column) == value)
    return out


def test_a_logged_batch_is_applied_and_its_batchlog_entries_removed():
    c = cluster(3)
    c.ok("n1", BATCH, consistency="QUORUM")
    c.sim.run_for(500)
    assert all(all(present(c.sim, n)) for n in ("n1", "n2", "n3"))
    assert [len(entries(c.sim, n)) for n in ("n1", "n2", "n3")] == [0, 0, 0]
    assert c.sim.nodes["n1"].node.stats.get("logged_batches") == 1
    stamps = {c.sim.local_row("n2", "ks", t, {"k": k})[f"writetime({col})"] for t, k, col, _ in ROWS}
    assert len(stamps) == 1                 # one timestamp for the whole batch
    rows = c.run("n2", "SELECT k, v FROM ks.t", consistency="ALL")
    assert isinstance(rows, Rows) and len(rows.rows) == 3
    c.sim.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_coordinator_dying_after_the_batchlog_write_has_its_batch_replayed(seed):
    c = cluster(seed, canary_mutant="batchlog_coordinator_dies")
    sim = c.sim
    rid = sim.submit("n1", "logged_batch", mutations=[
        ["insert", {"keyspace": "ks", "table": "t", "row": {"k": 1, "v": "a"}}],
        ["insert", {"keyspace": "ks", "table": "t", "row": {"k": 2, "v": "b"}}],
        ["update", {"keyspace": "ks", "table": "t", "key": {"k": 3}, "set": {"v": "c"}}],
        ["insert", {"keyspace": "ks", "table": "u", "row": {"k": 4, "w": 40}}]], consistency="QUORUM")
    sim.run_for(300)
    holders = [n for n in ("n2", "n3") if entries(sim, n)]
    assert holders == ["n2", "n3"]          # two other nodes hold the entry
    assert rid not in sim.replies           # the coordinator never answers...
    sim.crash("n1")                         # ...and dies
    assert not any(any(present(sim, n)) for n in ("n2", "n3"))   # nothing applied yet: not half
    sim.crash("n3")                         # a holder restarts: its entry is durable
    sim.restart("n3")
    sim.run_for(6000)                       # 2 x write timeout, then the next replay round
    assert all(present(sim, "n2")) and all(present(sim, "n3"))
    assert entries(sim, "n2") == [] and entries(sim, "n3") == []
    sim.restart("n1")                       # the dead coordinator gets the batch by hints
    sim.run_for(20_000)
    assert all(present(sim, "n1"))
    sim.close()


def test_no_live_node_for_the_batchlog_is_unavailable_and_a_silent_one_is_a_batch_log_timeout():
    c = cluster(5, nodes=2, rf=1, phi_convict_threshold=12.0, gossip_interval_ms=1000)
    c.sim.pause("n2")                       # not yet convicted: the batchlog write times out
    r = c.run("n1", BATCH, consistency="ANY")
    assert isinstance(r, WriteTimeout) and (r.write_type, r.block_for) == ("BATCH_LOG", 1), r
    c.sim.run_for(60_000)                   # now convicted: Unavailable before anything is sent
    r = c.run("n1", BATCH, consistency="ONE")
    assert isinstance(r, Unavailable), r
    assert all(not present(c.sim, "n1")[i] for i in range(4))
    c.sim.close()


def test_a_single_node_cluster_keeps_its_own_batchlog():
    c = cluster(6, nodes=1, rf=1)
    c.ok("n1", BATCH)
    c.sim.run_for(500)
    assert all(present(c.sim, "n1")) and entries(c.sim, "n1") == []
    c.sim.close()


def test_using_timestamp_stamps_every_statement_of_a_logged_batch():
    c = cluster(8)
    c.ok("n2", BATCH.replace("BEGIN BATCH", "BEGIN BATCH USING TIMESTAMP 1234567"), consistency="ALL")
    assert {c.sim.local_row("n3", "ks", t, {"k": k})[f"writetime({col})"] for t, k, col, _ in ROWS} == {1234567}
    c.sim.close()


def test_a_timeout_after_the_batchlog_write_says_batch_and_the_replay_finishes_it():
    kinds = []
    for seed in range(1, 13):               # the batchlog endpoints are 2 of n2-n4, chosen at random
        if "BATCH" in kinds:
            break
        c = cluster(seed, nodes=4, rf=4, phi_convict_threshold=12.0, gossip_interval_ms=1000)
        c.sim.pause("n4")                   # alive to the failure detector for a while yet
        r = c.run("n1", BATCH, consistency="ALL")
        assert isinstance(r, WriteTimeout), r
        holders = [n for n in ("n2", "n3") if entries(c.sim, n)]
        kinds.append(r.write_type)
        assert r.write_type == ("BATCH" if len(holders) == 2 else "BATCH_LOG"), (r, holders)
        if r.write_type == "BATCH":         # applied where it could be; the entry stays for the replay
            assert all(present(c.sim, "n2"))
            c.sim.resume("n4")
            c.sim.run_for(15_000)
            assert all(present(c.sim, "n4")) and entries(c.sim, "n2") == entries(c.sim, "n3") == []
        c.sim.close()
    assert "BATCH" in kinds


def test_the_native_clients_logged_batch_spans_tables_and_partitions():
    from ring.client.session import SessionAPI

    class SimSession(SessionAPI):             # the client's request building, run on the simulator
        def _run(self, op, args, post=None):
            return self.sim.request("n2", op, **args)

    c = cluster(9)
    s = SimSession()
    s.sim, s.keyspace = c.sim, "ks"
    result = s.logged_batch([{"op": "insert", "table": "t", "row": {"k": 1, "v": "a"}},
                             {"op": "insert", "table": "t", "row": {"k": 2, "v": "b"}},
                             {"op": "update", "table": "t", "key": {"k": 3}, "set": {"v": "c"}},
                             {"op": "insert", "table": "u", "row": {"k": 4, "w": 40}}], consistency="ALL")
    assert isinstance(result["timestamp"], int)
    assert all(present(c.sim, "n1")) and c.sim.nodes["n2"].node.stats.get("logged_batches") == 1
    c.sim.close()
