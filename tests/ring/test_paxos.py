"""Paxos pieces on their own: ballots, the acceptor's rules and durable state, the codec,
conditions, and the ops' errors (Unavailable before sending, WriteTimeout CAS when unknown)."""
import pytest

from engine.errors import InvalidRequest
from engine.store import Store
from engine.clock import ManualClock
from ring.errors import UnavailableError, WriteTimeout
from ring.faults import Faults
from ring.messages import (CommitRequest, PrepareRequest, PrepareResponse, ProposeRequest, decode, encode,
                           packb)
from ring.paxos import acceptor, ballot as bl, conditions, state as ps
from ring.paxos.proposer import restamp
from ring.runtime.sim import Simulation
from engine import mutation as mut

OPTS = {"gossip_interval_ms": 500, "phi_convict_threshold": 2.0, "write_request_timeout_ms": 1000,
        "read_request_timeout_ms": 1000}


# -- ballots ------------------------------------------------------------------------------------

def test_ballots_are_strictly_increasing_per_node_even_when_the_clock_goes_back():
    clock = bl.BallotClock("host-1")
    a = clock.next(5_000)
    b = clock.next(4_000)                 # the wall clock jumped back
    c = clock.next(4_000, at_least=bl.make(9_000, 7))
    assert a < b < c and bl.micros(c) == 9_001 and len(c) == bl.SIZE


def test_ballots_of_two_nodes_at_the_same_micros_differ_and_order_by_node():
    x, y = bl.BallotClock("host-1").next(10), bl.BallotClock("host-2").next(10)
    assert x != y and bl.micros(x) == bl.micros(y) == 10
    assert bl.NONE < min(x, y)


# -- the acceptor, on a real store ----------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    s = Store.open(str(tmp_path / "node"), background=False, clock=ManualClock(1_700_000_000_000_000))
    s.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 1})
    s.create_table("ks", "kv", {"k": "text", "v": "text"}, primary_key="k")
    ps.create_table(s)
    yield s
    s.close()


def _update(store, value, ts):
    table = store.table("ks", "kv")
    return mut.build_insert_encoded(table, {"k": "a", "v": value}, ts, 0, None, 1 << 20)[1:]


def test_acceptor_promises_only_higher_ballots_and_accepts_at_least_the_promise(store):
    table = store.table("ks", "kv")
    key = mut.partition_key_bytes(table, {"k": "a"})
    b1, b2 = bl.make(100, 1), bl.make(200, 1)
    ok, _ = acceptor.answer_prepare(store, PrepareRequest(1, table.id, key, b2, b"", None), Faults.none())
    assert ok.promised and ok.ballot == b2
    low, _ = acceptor.answer_prepare(store, PrepareRequest(2, table.id, key, b1, b"", None), Faults.none())
    assert not low.promised and low.ballot == b2           # names the higher promise
    again, _ = acceptor.answer_prepare(store, PrepareRequest(3, table.id, key, b2, b"", None), Faults.none())
    assert not again.promised                                # strictly greater only
    payload = _update(store, "x", 100)[1]
    rejected, _ = acceptor.answer_propose(store, ProposeRequest(4, table.id, key, b1, payload), Faults.none())
    assert not rejected.accepted and rejected.ballot == b2
    mutant, _ = acceptor.answer_propose(store, ProposeRequest(5, table.id, key, b1, payload),
                                        Faults.mutant("paxos_accept_lower_ballot"))
    assert mutant.accepted                                   # the canary breaks exactly this rule
    accepted, _ = acceptor.answer_propose(store, ProposeRequest(6, table.id, key, b2, restamp(payload, 200)),
                                          Faults.none())
    assert accepted.accepted
    seen, _ = acceptor.answer_prepare(store, PrepareRequest(7, table.id, key, bl.make(300, 2), b"", None),
                                      Faults.none())
    assert seen.promised and seen.accepted[:16] == b2 and seen.committed == b"" and seen.data is None


def test_commit_applies_the_update_and_only_a_newer_commit_becomes_the_most_recent(store):
    table = store.table("ks", "kv")
    key = mut.partition_key_bytes(table, {"k": "a"})
    new, old = bl.make(300, 1), bl.make(200, 1)
    r, _ = acceptor.answer_commit(store, CommitRequest(1, table.id, key, new, _update(store, "new", 300)[1]),
                                  Faults.none())
    assert r.error is None
    acceptor.answer_commit(store, CommitRequest(2, table.id, key, old, _update(store, "old", 200)[1]), Faults.none())
    st = ps.load(store, table.id, key)
    assert st.committed == new
    assert store.get("ks", "kv", {"k": "a"})["v"] == "new"  # last-write-wins by the ballots' micros


def test_a_restarted_replica_keeps_its_promises(tmp_path):
    path = str(tmp_path / "node")
    s = Store.open(path, background=False, clock=ManualClock(1_700_000_000_000_000))
    s.create_keyspace("ks", {"class": "SimpleStrategy", "replication_factor": 1})
    table = s.create_table("ks", "kv", {"k": "text", "v": "text"}, primary_key="k")
    ps.create_table(s)
    key = mut.partition_key_bytes(table, {"k": "a"})
    promised = bl.make(1_700_000_000_000_500, 9)
    acceptor.answer_prepare(s, PrepareRequest(1, table.id, key, promised, b"", None), Faults.none())
    s.crash(lose_unsynced=False)
    s = Store.open(path, background=False, clock=ManualClock(1_700_000_000_000_000))
    try:
        assert ps.load(s, table.id, key).promised == promised
        r, _ = acceptor.answer_prepare(s, PrepareRequest(2, table.id, key, bl.make(1, 1), b"", None), Faults.none())
        assert not r.promised and r.ballot == promised
    finally:
        s.close()


def test_restamp_sets_every_timestamp():
    from engine.update_check import decode_update
    from engine.partition import Partition, Row, encode_partition
    p = Partition((5, 1), {b"": Row((6, 1), {1: (7, 2**63 - 1, 0, b"x")})}, [(b"a", b"b", 8, 1)])
    q = decode_update(restamp(encode_partition(p), 99))
    assert q.deletion[0] == 99 and q.rows[b""].deletion[0] == 99 and q.rows[b""].cells[1][0] == 99
    assert q.ranges[0][2] == 99


# -- the codec --------------------------------------------------------------------------------------

def test_codec_round_trips_and_rejects_malformed_ballots():
    msg = PrepareResponse(3, True, bl.make(1, 2), bl.make(1, 2) + b"upd", b"", None, None)
    assert decode(encode(msg)) == msg
    with pytest.raises(InvalidRequest, match="16-byte ballot"):
        decode(packb([50, 1, "t", b"k", b"short", b"", None]))
    with pytest.raises(InvalidRequest, match="ballot and an update"):
        decode(packb([51, 1, True, bl.make(1, 2), b"x" * 10, b"", None, None]))


# -- conditions ----------------------------------------------------------------------------------

def test_conditions_follow_cassandra_null_semantics(store):
    table = store.table("ks", "kv")
    c = lambda **kw: conditions.parse(table, **kw)  # noqa: E731
    assert conditions.applies(c(if_not_exists=True), None)
    assert not conditions.applies(c(if_exists=True), None)
    assert conditions.applies(c(if_={"v": None}), None)
    assert not conditions.applies(c(if_={"v": "x"}), None)
    assert conditions.applies(c(if_={"v": ("!=", "x")}), None)
    assert not conditions.applies(c(if_={"v": (">", "a")}), None)
    assert conditions.applies(c(if_={"v": (">", "a")}), {"k": "a", "v": "b"})
    assert conditions.applies(c(if_={"v": ("IN", ["b", None])}), None)
    assert conditions.not_applied(c(if_={"v": "x"}), {"k": "a", "v": "b"}, ["k"]) == \
        {"applied": False, "k": "a", "v": "b"}
    for bad in ({"k": "a"}, {"v": ("~", "a")}, {"v": ("<", None)}, {"v": ("IN", "ab")}):
        with pytest.raises(InvalidRequest):
            c(if_=bad)
    with pytest.raises(InvalidRequest):
        c(if_exists=True, if_not_exists=True)


# -- the ops, in the simulator ---------------------------------------------------------------------

@pytest.fixture
def sim():
    s = Simulation(7, node_options=OPTS, durability="batch")
    s.run_for(4000)
    s.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 3})
    s.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "text", "v": "int"}, primary_key="k")
    s.run_until(s.now_ms + 10_000, stop=s.converged)
    yield s
    s.close()


def test_conditional_writes_and_serial_reads(sim):
    kv = {"keyspace": "ks", "table": "kv"}
    assert sim.request("n1", "insert", **kv, row={"k": "a", "v": 1}, if_not_exists=True) == {"applied": True}
    assert sim.request("n2", "insert", **kv, row={"k": "a", "v": 2}, if_not_exists=True) == \
        {"applied": False, "k": "a", "v": 1}
    assert sim.request("n3", "update", **kv, key={"k": "a"}, set={"v": 5}, if_={"v": ("<", 3)}) == {"applied": True}
    assert sim.request("n1", "get", **kv, key={"k": "a"}, consistency="SERIAL") == {"k": "a", "v": 5}
    assert sim.request("n2", "select", **kv, key={"k": "a"}, consistency="LOCAL_SERIAL") == [{"k": "a", "v": 5}]
    assert sim.request("n2", "delete", **kv, key={"k": "a"}, if_={"v": ("IN", [4, 6])}) == \
        {"applied": False, "k": "a", "v": 5}
    assert sim.request("n2", "delete", **kv, key={"k": "a"}, if_exists=True) == {"applied": True}
    assert sim.request("n3", "get", **kv, key={"k": "a"}, consistency="QUORUM") is None
    with pytest.raises(InvalidRequest, match="serial_consistency"):
        sim.request("n1", "insert", **kv, row={"k": "b", "v": 1}, if_not_exists=True, consistency="SERIAL")


def test_unavailable_before_anything_is_sent(sim):
    sim.crash("n2")
    sim.crash("n3")
    sim.run_for(8000)
    sent = []
    original = sim._send
    sim._send = lambda src, eff: (sent.append(type(eff.msg).__name__), original(src, eff))
    with pytest.raises(UnavailableError):
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": "a", "v": 1}, if_not_exists=True)
    with pytest.raises(UnavailableError):
        sim.request("n1", "get", keyspace="ks", table="kv", key={"k": "a"}, consistency="SERIAL")
    assert not [m for m in sent if m.startswith(("Prepare", "Propose", "Commit"))], sent
    assert sim.nodes["n1"].store.get("system", "paxos", {"row_key": b"a", "cf_id":
                                     sim.nodes["n1"].store.table("ks", "kv").id}) is None  # no promise either


def test_write_timeout_cas_when_the_outcome_is_unknown(sim):
    """n1's proposals reach nobody but itself: it accepted, so the outcome is unknown."""
    kv = {"keyspace": "ks", "table": "kv"}
    sim.request("n1", "insert", **kv, row={"k": "a", "v": 1}, if_not_exists=True)
    n1 = sim.nodes["n1"].endpoint
    from ring.messages import ProposeRequest as P
    original = sim._send

    def drop_proposals(src, eff):
        if src.endpoint == n1 and type(eff.msg) is P and eff.to != n1:
            return None
        return original(src, eff)
    sim._send = drop_proposals
    with pytest.raises(WriteTimeout) as e:
        sim.request("n1", "update", **kv, key={"k": "a"}, set={"v": 2}, if_={"v": 1})
    assert e.value.write_type == "CAS"
    sim._send = original
    # a later round finishes what n1's acceptor holds: the update did apply
    assert sim.request("n2", "get", **kv, key={"k": "a"}, consistency="SERIAL") == {"k": "a", "v": 2}
