"""Canary mutants and negative controls, on scripted schedules in the simulator.

Each canary breaks one rule the consistency guarantees stand on; its scenario must show the
violation with the mutant on, and must not show it with the production code. The negative
controls show what Cassandra itself allows: a node kept away past gc_grace_seconds resurrects
deleted data, and clock skew breaks linearizability.
"""
import pytest

from ring.errors import WriteTimeout
from ring.runtime.sim import Simulation

OPTS = {"gossip_interval_ms": 500, "phi_convict_threshold": 8.0, "write_request_timeout_ms": 1000,
        "read_request_timeout_ms": 1000}


def _sim(seed, mutant="", gc_grace=3600, **opts):
    sim = Simulation(seed, node_options={**OPTS, **opts, "canary_mutant": mutant})
    sim.run_for(4000)
    sim.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 3})
    sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int", "v": "text"}, primary_key="k",
                options={"gc_grace_seconds": gc_grace})
    sim.run_for(2000)
    assert sim.converged()
    return sim


def _get(sim, node, level):
    row = sim.request(node, "get", keyspace="ks", table="kv", key={"k": 1}, writetime=True, consistency=level)
    return None if row is None else row["v"]


def _cut(sim, a, *others):
    for b in others:
        sim.cut.add((sim.nodes[a].endpoint, sim.nodes[b].endpoint))


def stale_read_after_quorum_write(mutant: str) -> bool:
    """n1's messages to n2, n3 vanish (they still look alive); a QUORUM write via n1; a QUORUM read via n2."""
    with _sim(11, mutant) as sim:
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "old"}, consistency="ALL")
        _cut(sim, "n1", "n2", "n3")
        try:
            sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "new"}, consistency="QUORUM")
        except WriteTimeout:
            return False          # not acknowledged: nothing promised
        return _get(sim, "n2", "QUORUM") != "new"   # acknowledged at QUORUM, yet a QUORUM read misses it


@pytest.mark.parametrize("mutant,caught", [("", False), ("ack_w_minus_1", True)])
def test_ack_after_w_minus_1_gives_stale_quorum_reads(mutant, caught):
    assert stale_read_after_quorum_write(mutant) is caught


def lost_acknowledged_write(mutant: str) -> bool:
    """A QUORUM write via n1 is acknowledged; at once n2 and n3 die (kill -9: what reached the OS
    survives) and restart from disk; with n1 cut off, does a QUORUM read via n2 see the write?"""
    with _sim(16, mutant) as sim:
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "old"}, consistency="ALL")
        sim.run_for(500)                       # under the mutant too, "old" reaches every commit log
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "new"}, consistency="QUORUM")
        for name in ("n2", "n3"):
            sim.crash(name, lose_unsynced=False)
        for name in ("n2", "n3"):
            sim.restart(name)
        sim.partition({"n1"}, {"n2", "n3"})    # n2 and n3 alone answer the read
        sim.run_for(2000)
        return _get(sim, "n2", "QUORUM") != "new"


@pytest.mark.parametrize("mutant,caught", [("", False), ("ack_before_commitlog", True)])
def test_acking_before_the_commit_log_append_loses_acknowledged_writes(mutant, caught):
    assert lost_acknowledged_write(mutant) is caught


def resurrected_by_range_delete(mutant: str) -> list[int]:
    """Rows c=0..5 flushed; a range delete of 1 < c < 4 flushed; a newer row flushed: three
    SSTables on every replica. The clustering rows a QUORUM read returns."""
    with _sim(17, mutant) as sim:
        sim.request("n1", "create_table", keyspace="ks", name="ct", columns={"p": "int", "c": "int", "v": "text"},
                    primary_key=("p", "c"))
        sim.run_for(2000)
        for c in range(6):
            sim.request("n1", "insert", keyspace="ks", table="ct", row={"p": 1, "c": c, "v": "x"}, consistency="ALL")
        for step in ("rows", "range delete", "newer row"):
            if step == "range delete":
                sim.request("n2", "delete", keyspace="ks", table="ct", key={"p": 1}, start={"c": 1}, end={"c": 4},
                            start_inclusive=False, end_inclusive=False, consistency="ALL")
            elif step == "newer row":
                sim.request("n3", "insert", keyspace="ks", table="ct", row={"p": 1, "c": 9, "v": "y"}, consistency="ALL")
            for name in ("n1", "n2", "n3"):
                sim.request(name, "flush")
            sim.run_for(5)
        rows = sim.request("n1", "select", keyspace="ks", table="ct", key={"p": 1}, consistency="QUORUM")
        return [r["c"] for r in rows]


@pytest.mark.parametrize("mutant,rows", [("", [0, 1, 4, 5, 9]), ("range_tombstone_one_sstable", [0, 1, 2, 3, 4, 5, 9])])
def test_ignoring_an_older_sstables_range_tombstone_resurrects_rows(mutant, rows):
    assert resurrected_by_range_delete(mutant) == rows


def hinted_sloppy_quorum(mutant: str) -> bool:
    with _sim(12, mutant, phi_convict_threshold=2.0) as sim:
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "old"}, consistency="ALL")
        sim.crash("n3", lose_unsynced=False)
        sim.run_for(5000)                      # n3 convicted: writes hint it
        _cut(sim, "n1", "n2", "n3")            # n2 never gets n1's mutation, n3 never gets the hint
        sim.nodes["n1"].node.detector.report(sim.nodes["n2"].endpoint, sim.now_ms)   # n2 still looks alive
        try:
            sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "new"}, consistency="QUORUM")
        except WriteTimeout:
            return False
        sim.restart("n3")
        sim.run_for(3000)
        return _get(sim, "n2", "QUORUM") != "new"


@pytest.mark.parametrize("mutant,caught", [("", False), ("hints_count", True)])
def test_counting_hints_toward_the_level_gives_stale_quorum_reads(mutant, caught):
    assert hinted_sloppy_quorum(mutant) is caught


def non_monotonic_quorum_reads(mutant: str) -> bool:
    """A write that reached only n1; a QUORUM read via n1 sees it; then, n1 gone, a QUORUM read via n2."""
    with _sim(13, mutant) as sim:
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "old"}, consistency="ALL")
        _cut(sim, "n1", "n2", "n3")
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "new"}, consistency="ONE")
        sim.run_for(50)                        # the mutations to n2 and n3 are lost on the cut links
        sim.cut.clear()
        first = _get(sim, "n1", "QUORUM")      # n1 + n2: digest mismatch, reconcile ("new")
        sim.partition({"n1"}, {"n2", "n3"})
        second = _get(sim, "n2", "QUORUM")     # n2 + n3: only "new" if the read repaired n2
        return first == "new" and second != "new"


@pytest.mark.parametrize("mutant,caught", [("", False), ("no_read_repair_writeback", True)])
def test_skipping_the_read_repair_write_back_breaks_monotonic_reads(mutant, caught):
    assert non_monotonic_quorum_reads(mutant) is caught


def resurrection(mutant: str, gc_grace: int, away_ms: int) -> bool:
    """n3 misses a delete while away; compaction purges; repair; is the deleted value back?"""
    with _sim(14, mutant, gc_grace=gc_grace) as sim:
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "doomed"}, consistency="ALL")
        sim.partition({"n3"}, {"n1", "n2"})
        sim.run_for(2000)
        sim.request("n1", "delete", keyspace="ks", table="kv", key={"k": 1}, consistency="QUORUM")
        sim.run_for(away_ms)
        for name in ("n1", "n2"):
            sim.request(name, "flush")
            sim.request(name, "compact")     # purges only what the rules (or the mutant) allow
            sim.request(name, "truncatehints")
        sim.heal()
        sim.run_until(sim.now_ms + 20_000, stop=sim.converged)
        sim.request("n1", "repair", keyspace="ks", table="kv")
        return _get(sim, "n1", "ALL") == "doomed"


@pytest.mark.parametrize("mutant,caught", [("", False), ("early_tombstone_purge", True)])
def test_purging_tombstones_early_resurrects_deleted_data(mutant, caught):
    assert resurrection(mutant, gc_grace=3600, away_ms=3000) is caught


def test_negative_control_down_longer_than_gc_grace_without_repair_resurrects():
    assert resurrection("", gc_grace=5, away_ms=8000) is True


def test_negative_control_clock_skew_breaks_linearizability():
    """n2's clock runs 1 s behind: its later write loses to an earlier one, so a read that starts
    after both writes returned sees the older value — no linearization exists."""
    with _sim(15) as sim:
        sim.skew("n2", -1000)
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "first"}, consistency="ALL")
        sim.request("n2", "insert", keyspace="ks", table="kv", row={"k": 1, "v": "second"}, consistency="ALL")
        assert _get(sim, "n3", "ALL") == "first"
