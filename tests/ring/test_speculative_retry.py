"""Speculative retry: a replica that died but is not yet convicted costs a read a threshold, not
a read timeout (ring/speculative_retry.py)."""
import pytest

from engine.errors import InvalidRequest
from ring.runtime.sim import Simulation
from ring.speculative_retry import LatencyTracker, parse, threshold_ms


def test_parse_and_thresholds():
    assert parse("99p") == ("p", 99.0) and parse("20ms") == ("ms", 20.0)
    assert parse("none") == ("NONE", 0.0) and parse("ALWAYS") == ("ALWAYS", 0.0) and parse(None) == ("p", 99.0)
    for bad in ("100p", "0p", "fast", "10s", ""):
        with pytest.raises(InvalidRequest, match="speculative_retry"):
            parse(bad)
    tracker = LatencyTracker(window=100)
    assert threshold_ms("99p", tracker) == 50  # too few samples: the fallback
    for i in range(1000):
        tracker.record(float(i % 100))
    assert len(tracker.sorted) == 100 and tracker.sorted == sorted(tracker.samples)
    assert threshold_ms("50p", tracker) == 50.0 and threshold_ms("99p", tracker) == 99.0
    assert threshold_ms("NONE", tracker) is None and threshold_ms("ALWAYS", tracker) == 0.0


def _cluster(seed: int, option: str, rows: int, **timeouts) -> Simulation:
    """3 nodes, RF 3, `rows` rows written at ALL; the failure detector is slow to convict (phi 30)."""
    sim = Simulation(seed, 3, node_options={"gossip_interval_ms": 200, "phi_convict_threshold": 30.0, **timeouts})
    sim.run_until(5000, stop=sim.converged)
    sim.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 3})
    sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int", "v": "text"}, primary_key="k",
                options={"speculative_retry": option})
    sim.run_for(1000)
    for k in range(rows):
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": k, "v": "x"}, consistency="ALL")
    return sim


def _reads_after_a_silent_death(option: str):
    sim = _cluster(3, option, 40, read_request_timeout_ms=3000)
    for k in range(40):  # latency samples for the percentile
        sim.request("n1", "get", keyspace="ks", table="kv", key={"k": k}, consistency="QUORUM")
    sim.crash("n3")      # not convicted for a long while (phi threshold 30)
    outcomes = []
    for k in range(12):
        start = sim.now_ms
        reply = sim.wait(sim.submit("n1", "get", keyspace="ks", table="kv", key={"k": k}, consistency="QUORUM"))
        outcomes.append((reply.error, sim.now_ms - start))
    stats = dict(sim.nodes["n1"].node.stats, n3_alive=sim.nodes["n1"].node.is_alive(sim.nodes["n3"].endpoint))
    sim.close()
    return outcomes, stats


def test_a_dead_unconvicted_replica_costs_a_threshold_not_a_timeout():
    outcomes, stats = _reads_after_a_silent_death("99p")
    assert all(error is None for error, _ in outcomes)
    assert max(took for _, took in outcomes) <= 500
    assert stats["speculative_retries"] > 0
    assert stats["n3_alive"]  # all that happened before the failure detector convicted n3


def test_without_speculation_those_reads_time_out():
    outcomes, stats = _reads_after_a_silent_death("NONE")
    assert any(type(error).__name__ == "ReadTimeout" for error, _ in outcomes)
    assert stats["speculative_retries"] == 0


@pytest.mark.parametrize("option", ["99p", "NONE"])
def test_scans_speculate_too(option):
    sim = _cluster(4, option, 60, range_request_timeout_ms=4000)
    sim.crash("n2")
    start = sim.now_ms
    reply = sim.wait(sim.submit("n1", "scan", keyspace="ks", table="kv", consistency="QUORUM", page_size=1000))
    took = sim.now_ms - start
    sim.close()
    if option == "NONE":
        assert type(reply.error).__name__ == "ReadTimeout"
    else:
        assert reply.error is None and len(reply.result["rows"]) == 60
        assert took < 4000
