"""The simulator itself: determinism across processes and hash seeds, and each fault it injects."""
import os
import subprocess
import sys
import textwrap

import pytest

from ring.errors import UnavailableError
from ring.runtime.sim import Simulation

FAST = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0}


def _cluster(seed, **kw):
    sim = Simulation(seed, node_options=FAST, **kw)
    sim.run_for(4000)
    sim.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 3})
    sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int", "v": "text"}, primary_key="k")
    sim.run_for(2000)
    assert sim.converged()
    return sim


SCRIPT = textwrap.dedent("""
    from ring.runtime.sim import Simulation
    sim = Simulation({seed}, node_options={{"gossip_interval_ms": 500, "phi_convict_threshold": 2.0}})
    sim.run_for(4000)
    sim.request("n1", "create_keyspace", name="ks", replication={{"class": "SimpleStrategy", "replication_factor": 3}})
    sim.request("n1", "create_table", keyspace="ks", name="kv", columns={{"k": "int", "v": "text"}}, primary_key="k")
    sim.link("n1", "n2").drop = 0.2
    sim.link("n2", "n3").dup = 0.3
    sim.link("n3", "n1").reorder = True
    for i in range(30):
        sim.submit("n%d" % (i % 3 + 1), "insert", keyspace="ks", table="kv", row={{"k": i % 7, "v": str(i)}},
                   consistency="QUORUM")
        sim.run_for(37)
    sim.crash("n2")
    sim.run_for(3000)
    sim.restart("n2")
    sim.run_for(3000)
    print(sim.trace_digest())
    sim.close()
""")


def test_same_seed_same_trace_in_fresh_processes_with_different_hash_seeds():
    digests = set()
    for hash_seed in ("0", "1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", SCRIPT.format(seed=7)], env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        digests.add(out.stdout.strip())
    assert len(digests) == 1
    other = subprocess.run([sys.executable, "-c", SCRIPT.format(seed=8)], capture_output=True, text=True, timeout=120)
    assert other.stdout.strip() not in digests  # a different seed explores a different run


def test_partition_makes_the_minority_unavailable_and_heal_restores_it():
    with _cluster(1) as sim:
        sim.partition({"n1"}, {"n2", "n3"})
        sim.run_for(5000)
        with pytest.raises(UnavailableError):
            sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="QUORUM")
        sim.request("n2", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "majority"}, consistency="QUORUM")
        sim.heal()
        sim.run_for(5000)
        assert sim.request("n1", "get", keyspace="ks", table="kv", key={"k": 1}, consistency="QUORUM")["v"] == "majority"


def test_asymmetric_partition_cuts_one_direction_only():
    with _cluster(2) as sim:
        sim.partition({"n1"}, {"n2", "n3"}, symmetric=False)   # n1 -> others cut, others -> n1 flow
        assert (sim.nodes["n1"].endpoint, sim.nodes["n2"].endpoint) in sim.cut
        assert (sim.nodes["n2"].endpoint, sim.nodes["n1"].endpoint) not in sim.cut


def test_crash_loses_what_was_not_synced_and_restart_replays_the_rest():
    with _cluster(3, sync_interval_ms=10_000_000) as sim:
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "synced"}, consistency="ALL")
        for sn in sim.nodes.values():
            sn.store.commit_log.sync()
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 2, "v": "unsynced"}, consistency="ALL")
        sim.crash("n3", lose_unsynced=True)
        sim.restart("n3")
        assert sim.local_row("n3", "ks", "kv", {"k": 1}, writetime=False) == {"k": 1, "v": "synced"}
        assert sim.local_row("n3", "ks", "kv", {"k": 2}) is None


def test_wipe_is_permanent_loss():
    with _cluster(4) as sim:
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="ALL")
        sim.wipe("n3")
        sim.restart("n3")
        sim.run_for(5000)
        assert sim.converged()                           # the schema came back from the peers...
        assert sim.local_row("n3", "ks", "kv", {"k": 1}) is None   # ...the data did not (repair's job)
        assert sim.request("n1", "get", keyspace="ks", table="kv", key={"k": 1}, consistency="QUORUM")["v"] == "x"


def test_pause_is_convicted_and_resume_delivers_what_was_held():
    with _cluster(5) as sim:
        sim.pause("n3")
        sim.run_for(5000)
        assert not sim.nodes["n1"].node.is_alive(sim.nodes["n3"].endpoint)
        assert sim.nodes["n3"].held                      # inbound messages wait for the resume
        sim.resume("n3")
        sim.run_for(5000)
        assert sim.converged()


def test_skew_and_jumps_move_only_that_node_s_wall_clock():
    with _cluster(6) as sim:
        before = sim.nodes["n1"].clock.wall_us()
        sim.skew("n2", 250)
        sim.clock_jump("n3", -5000)
        assert sim.nodes["n2"].clock.wall_us() - sim.nodes["n1"].clock.wall_us() == 250_000
        assert sim.nodes["n3"].clock.wall_us() - sim.nodes["n1"].clock.wall_us() == -5_000_000
        ts = sim.request("n2", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="ONE")
        assert ts["timestamp"] >= before + 250_000
