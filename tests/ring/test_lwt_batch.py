"""Conditional BATCH on one partition (ring/ops/lwt.py `batch`), in the simulator: every condition
decided on one read, the statements applied together or not at all, refused across partitions and
tables, and atomic under concurrent batches (a transfer between two rows of one partition keeps
the total)."""
import pytest

from engine.errors import InvalidRequest
from ring.runtime.sim import Simulation

OPTS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "write_request_timeout_ms": 1000,
        "read_request_timeout_ms": 1000}
T = {"keyspace": "ks", "table": "acct"}


@pytest.fixture
def sim():
    s = Simulation(11, node_options=OPTS, durability="batch")
    s.run_for(4000)
    s.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 3})
    s.request("n1", "create_table", keyspace="ks", name="acct", columns={"bank": "text", "id": "int", "bal": "int",
                                                                          "note": "text"}, primary_key=("bank", "id"))
    s.request("n1", "create_table", keyspace="ks", name="other", columns={"k": "text", "v": "int"}, primary_key="k")
    s.run_until(s.now_ms + 10_000, stop=s.converged)
    yield s
    s.close()


def _rows(sim, node="n1"):
    return {r["id"]: r["bal"] for r in sim.request(node, "select", **T, key={"bank": "b"}, consistency="SERIAL")}


def test_batch_applies_all_statements_when_every_condition_holds(sim):
    opened = sim.request("n1", "batch", **T, statements=[
        {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 100}, "if_not_exists": True},
        {"op": "insert", "row": {"bank": "b", "id": 2, "bal": 0}, "if_not_exists": True}])
    assert opened == {"applied": True}
    assert _rows(sim, "n2") == {1: 100, 2: 0}
    moved = sim.request("n2", "batch", **T, consistency="QUORUM", statements=[
        {"op": "update", "key": {"bank": "b", "id": 1}, "set": {"bal": 70}, "if_": {"bal": 100}},
        {"op": "update", "key": {"bank": "b", "id": 2}, "set": {"bal": 30}, "if_": {"bal": ("<=", 0)}},
        {"op": "insert", "row": {"bank": "b", "id": 3, "bal": 0, "note": "audit"}}])   # unconditioned rides along
    assert moved == {"applied": True}
    assert _rows(sim, "n3") == {1: 70, 2: 30, 3: 0}


def test_batch_applies_nothing_when_one_condition_fails(sim):
    sim.request("n1", "batch", **T, statements=[
        {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 100}, "if_not_exists": True},
        {"op": "insert", "row": {"bank": "b", "id": 2, "bal": 5}, "if_not_exists": True}])
    result = sim.request("n3", "batch", **T, statements=[
        {"op": "update", "key": {"bank": "b", "id": 1}, "set": {"bal": 0}, "if_": {"bal": 100}},     # holds
        {"op": "update", "key": {"bank": "b", "id": 2}, "set": {"bal": 105}, "if_": {"bal": 0}},     # fails
        {"op": "delete", "key": {"bank": "b", "id": 9}, "if_exists": True}])                        # fails: absent
    assert result == {"applied": False, "rows": [{"applied": False, "bank": "b", "id": 1, "bal": 100},
                                                 {"applied": False, "bank": "b", "id": 2, "bal": 5}]}
    assert _rows(sim) == {1: 100, 2: 5}
    deleted = sim.request("n2", "batch", **T, statements=[
        {"op": "delete", "key": {"bank": "b", "id": 1}, "if_exists": True},
        {"op": "delete", "key": {"bank": "b", "id": 2}, "columns": ["bal"]}])
    assert deleted == {"applied": True}
    assert sim.request("n1", "select", **T, key={"bank": "b"}, consistency="SERIAL") == [
        {"bank": "b", "id": 2}]   # the row marker keeps row 2; its bal is gone


def test_conditional_batch_is_refused_across_partitions_and_tables(sim):
    with pytest.raises(InvalidRequest, match="^Batch with conditions cannot span multiple partitions$"):
        sim.request("n1", "batch", **T, statements=[
            {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 1}, "if_not_exists": True},
            {"op": "insert", "row": {"bank": "c", "id": 1, "bal": 1}}])
    with pytest.raises(InvalidRequest, match="^Batch with conditions cannot span multiple tables$"):
        sim.request("n1", "batch", **T, statements=[
            {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 1}, "if_not_exists": True},
            {"op": "insert", "table": "other", "row": {"k": "b", "v": 1}}])
    with pytest.raises(InvalidRequest, match="custom timestamp"):
        sim.request("n1", "batch", **T, timestamp=5, statements=[
            {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 1}, "if_not_exists": True}])
    with pytest.raises(InvalidRequest, match="Cannot mix"):
        sim.request("n1", "batch", **T, statements=[
            {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 1}, "if_not_exists": True},
            {"op": "update", "key": {"bank": "b", "id": 1}, "set": {"bal": 2}, "if_": {"bal": 1}}])
    with pytest.raises(InvalidRequest, match="statement 1"):
        sim.request("n1", "batch", **T, statements=[
            {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 1}, "if_not_exists": True}, {"op": "upsert"}])
    with pytest.raises(InvalidRequest):
        sim.request("n1", "batch", **T, statements=[])
    assert sim.request("n1", "select", **T, key={"bank": "b"}, consistency="SERIAL") == []   # nothing applied


def test_batch_without_conditions_is_one_write_of_one_partition(sim):
    assert sim.request("n1", "batch", **T, consistency="QUORUM", statements=[
        {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 1}},
        {"op": "update", "key": {"bank": "b", "id": 2}, "set": {"bal": 2}}]) is not None
    assert _rows(sim) == {1: 1, 2: 2}
    with pytest.raises(InvalidRequest, match="one partition"):
        sim.request("n1", "batch", **T, statements=[
            {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 1}},
            {"op": "insert", "row": {"bank": "c", "id": 1, "bal": 1}}])


def test_concurrent_transfer_batches_keep_the_total(sim):
    """Clients on every node move money between two rows of one partition with conditional batches
    read at SERIAL; whatever interleaves, an applied batch moved exactly what it read, so the
    total stays 100 and every SERIAL read sees it."""
    sim.request("n1", "batch", **T, statements=[
        {"op": "insert", "row": {"bank": "b", "id": 1, "bal": 100}, "if_not_exists": True},
        {"op": "insert", "row": {"bank": "b", "id": 2, "bal": 0}, "if_not_exists": True}])
    applied = 0
    for round_ in range(6):
        seen = _rows(sim, "n1")
        rids = []
        for i, node in enumerate(["n1", "n2", "n3"]):
            amount = 1 + i + round_
            rids.append(sim.submit(node, "batch", **T, consistency="QUORUM", statements=[
                {"op": "update", "key": {"bank": "b", "id": 1}, "set": {"bal": seen[1] - amount},
                 "if_": {"bal": seen[1]}},
                {"op": "update", "key": {"bank": "b", "id": 2}, "set": {"bal": seen[2] + amount},
                 "if_": {"bal": seen[2]}}]))
        for rid in rids:
            reply = sim.wait(rid)
            if reply.error is None:
                applied += reply.result["applied"]
        assert sum(_rows(sim, "n2").values()) == 100
    assert 1 <= applied <= 6 and _rows(sim)[1] < 100   # one expectation per round: at most one winner
