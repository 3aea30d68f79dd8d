"""The sans-IO Node driven in-process: several nodes, one message loop, controllable message loss.

Every message goes through the real codec (encode/decode), so these tests exercise the wire
forms too. Time is virtual (`now` in ms plus a ManualClock for write timestamps).
"""
import random

import pytest

from engine.clock import ManualClock
from engine.store import Store
from ring.errors import ProtocolError, ReadTimeout, UnavailableError, WriteTimeout
from ring.messages import ClientRequest, MutationRequest, Send, decode, encode
from ring.node import Node, NodeConfig


class Loop:
    def __init__(self, tmp_path, n=3, dcs=None, phi=2.0, **config):
        self.clock = ManualClock()
        self.eps = [f"127.0.0.1:{9100 + i}" for i in range(n)]
        self.nodes = {}
        for i, ep in enumerate(self.eps):
            dc = dcs[i] if dcs else "datacenter1"
            store = Store.open(str(tmp_path / f"n{i}"), background=False, clock=self.clock)
            cfg = NodeConfig(endpoint=ep, host_id=f"host-{i}", seeds=[self.eps[0]], datacenter=dc,
                             gossip_interval_ms=500, phi_convict_threshold=phi, **config)
            self.nodes[ep] = Node(cfg, store, random.Random(i), self.clock)
        self.now = 0
        self.queue = []
        self.replies = {}
        self.blocked = set()       # (src, dst) pairs whose messages are dropped
        self.down = set()          # endpoints that neither send nor receive
        self.rid = 0
        self.sent = []
        for ep, node in self.nodes.items():
            self._run(node.start(self.now), ep)
        self.advance(6000)

    def _run(self, effects, src):
        for e in effects:
            if isinstance(e, Send):
                self.sent.append((src, e.to, type(e.msg).__name__))
                self.queue.append((src, e.to, decode(encode(e.msg))))
            else:
                self.replies[e.request_id] = e

    def pump(self):
        while self.queue:
            src, dst, msg = self.queue.pop(0)
            if dst in self.down or src in self.down or (src, dst) in self.blocked:
                continue
            self._run(self.nodes[dst].step(self.now, src, msg), dst)

    def advance(self, ms, step=100):
        for _ in range(ms // step):
            self.now += step
            self.clock.advance(step / 1000)
            for ep, node in self.nodes.items():
                if ep not in self.down:
                    self._run(node.tick(self.now), ep)
            self.pump()

    def request(self, ep, op, wait_ms=0, **args):
        self.rid += 1
        rid = self.rid
        self._run(self.nodes[ep].submit(self.now, ClientRequest(rid, op, args)), ep)
        self.pump()
        if rid not in self.replies and wait_ms:
            self.advance(wait_ms)
        reply = self.replies.pop(rid)
        if reply.error is not None:
            raise reply.error
        return reply.result

    def setup_table(self, rf=3, replication=None):
        a = self.eps[0]
        self.request(a, "create_keyspace", name="ks",
                     replication=replication or {"class": "SimpleStrategy", "replication_factor": rf})
        self.request(a, "create_table", keyspace="ks", name="kv", columns={"k": "int", "v": "text"}, primary_key="k")
        self.advance(2000)
        versions = {n.schema.version() for n in self.nodes.values()}
        assert len(versions) == 1, "schema did not converge"

    def local(self, ep, k):
        return self.nodes[ep].store.get("ks", "kv", {"k": k})


@pytest.fixture
def loop(tmp_path):
    lp = Loop(tmp_path)
    yield lp
    for node in lp.nodes.values():
        node.store.close()


def test_gossip_converges_and_every_node_sees_the_ring(loop):
    for node in loop.nodes.values():
        assert sorted(node.gossiper.states) == loop.eps
        assert len(node.ring.tokens) == 3 * 16
        assert all(row["up"] and row["state"] == "NORMAL" for row in node.status())


def test_schema_created_on_one_node_is_usable_on_all(loop):
    loop.setup_table()
    for ep in loop.eps:
        loop.request(ep, "insert", keyspace="ks", table="kv", row={"k": 7, "v": ep}, consistency="ALL")
        assert loop.request(ep, "get", keyspace="ks", table="kv", key={"k": 7}, consistency="ALL")["v"] == ep


def test_quorum_reads_see_quorum_writes_and_replicas_hold_the_data(loop):
    loop.setup_table()
    for k in range(30):
        loop.request(loop.eps[k % 3], "insert", keyspace="ks", table="kv", row={"k": k, "v": str(k)},
                     consistency="QUORUM")
    for k in range(30):
        assert loop.request(loop.eps[(k + 1) % 3], "get", keyspace="ks", table="kv", key={"k": k},
                            consistency="QUORUM") == {"k": k, "v": str(k)}
        assert all(loop.local(ep, k) == {"k": k, "v": str(k)} for ep in loop.eps)  # RF 3: all hold it


def test_unavailable_is_raised_before_anything_is_sent(loop):
    loop.setup_table()
    dead = loop.eps[2]
    loop.down.add(dead)
    loop.advance(8000)
    a = loop.eps[0]
    assert not loop.nodes[a].is_alive(dead)
    loop.sent.clear()
    with pytest.raises(UnavailableError) as err:
        loop.request(a, "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="ALL")
    assert (err.value.required, err.value.alive) == (3, 2)
    assert not [s for s in loop.sent if s[2] == "MutationRequest"]
    assert loop.local(a, 1) is None                  # nothing was written
    loop.request(a, "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="QUORUM")
    assert loop.request(a, "get", keyspace="ks", table="kv", key={"k": 1}, consistency="QUORUM")["v"] == "x"


def test_write_timeout_when_replicas_do_not_answer(tmp_path):
    loop = Loop(tmp_path, phi=8.0)  # b and c must stay "alive" while their messages vanish
    loop.setup_table()
    a, b, c = loop.eps
    loop.blocked |= {(a, b), (a, c)}                 # b and c look alive but never get the mutation
    with pytest.raises(WriteTimeout) as err:
        loop.request(a, "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="QUORUM",
                     wait_ms=2500)
    assert (err.value.received, err.value.block_for) == (1, 2)
    assert "may" in str(err.value)                   # the write may still be applied
    with pytest.raises(ReadTimeout):
        loop.request(a, "get", keyspace="ks", table="kv", key={"k": 1}, consistency="ALL", wait_ms=5500)


def test_digest_mismatch_triggers_blocking_read_repair(loop):
    loop.setup_table()
    a, b, c = loop.eps
    loop.request(a, "insert", keyspace="ks", table="kv", row={"k": 5, "v": "old"}, consistency="ALL")
    loop.blocked.add((a, c))                         # c misses the update
    loop.request(a, "insert", keyspace="ks", table="kv", row={"k": 5, "v": "new"}, consistency="QUORUM")
    loop.pump()
    assert loop.local(c, 5)["v"] == "old"
    loop.blocked.clear()
    assert loop.request(b, "get", keyspace="ks", table="kv", key={"k": 5}, consistency="ALL")["v"] == "new"
    assert loop.nodes[b].stats["digest_mismatches"] == 1 and loop.nodes[b].stats["read_repairs"] >= 1
    assert loop.local(c, 5)["v"] == "new"            # written back before the read answered


def test_scan_pages_over_the_whole_ring(loop):
    loop.setup_table()
    for k in range(100):
        loop.request(loop.eps[0], "insert", keyspace="ks", table="kv", row={"k": k, "v": "v"}, consistency="ONE")
    rows, state, pages = [], None, 0
    while True:
        page = loop.request(loop.eps[1], "scan", keyspace="ks", table="kv", page_size=13, paging_state=state,
                            consistency="QUORUM")
        rows += page["rows"]
        pages += 1
        state = page["paging_state"]
        if state is None:
            break
    assert sorted(r["k"] for r in rows) == list(range(100)) and pages >= 8


def test_each_quorum_and_local_levels_with_two_datacenters(tmp_path):
    lp = Loop(tmp_path, n=4, dcs=["dc1", "dc1", "dc2", "dc2"])
    lp.setup_table(replication={"class": "NetworkTopologyStrategy", "dc1": 2, "dc2": 2})
    a = lp.eps[0]
    for level in ("LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE", "QUORUM", "ALL"):
        lp.request(a, "insert", keyspace="ks", table="kv", row={"k": 1, "v": level}, consistency=level)
        assert lp.request(a, "get", keyspace="ks", table="kv", key={"k": 1}, consistency=level)["v"] == level
    lp.down |= {lp.eps[2], lp.eps[3]}                # dc2 is gone
    lp.advance(8000)
    lp.request(a, "insert", keyspace="ks", table="kv", row={"k": 2, "v": "x"}, consistency="LOCAL_QUORUM")
    with pytest.raises(UnavailableError):
        lp.request(a, "insert", keyspace="ks", table="kv", row={"k": 2, "v": "x"}, consistency="EACH_QUORUM")
    for node in lp.nodes.values():
        node.store.close()


def test_a_request_the_replica_cannot_serve_is_answered_with_an_error(loop):
    node = loop.nodes[loop.eps[0]]
    [send] = node.step(loop.now, loop.eps[1], MutationRequest(1, "no-such-table", b"k", b"\x93"))
    assert send.to == loop.eps[1] and "unknown table id no-such-table" in send.msg.error


def test_step_does_not_swallow_what_is_not_a_message(loop):
    # malformed messages are rejected by the codec (tests/ring/test_node_faults.py); anything
    # else reaching step is a bug and must reach the driver, not look like network loss
    with pytest.raises(ProtocolError, match="unexpected message object"):
        loop.nodes[loop.eps[0]].step(loop.now, loop.eps[1], object())


# -- hinted handoff ------------------------------------------------------------------------------

def _kill_and_convict(loop, ep):
    loop.down.add(ep)
    loop.advance(8000)
    assert not loop.nodes[loop.eps[0]].is_alive(ep)


def _revive(loop, ep, ms=8000):
    loop.down.discard(ep)
    loop.advance(ms)


def test_hints_bring_a_returning_replica_up_to_date(loop):
    loop.setup_table()
    a, b, c = loop.eps
    _kill_and_convict(loop, c)
    for k in range(20):
        loop.request(a, "insert", keyspace="ks", table="kv", row={"k": k, "v": "while-down"}, consistency="QUORUM")
    pending = loop.request(a, "listpendinghints")
    assert pending == [{"host_id": "host-2", "endpoint": c, "hints": 20}]
    assert all(loop.local(c, k) is None for k in range(20))
    _revive(loop, c)
    assert all(loop.local(c, k) == {"k": k, "v": "while-down"} for k in range(20))  # read at ONE from c alone
    assert loop.nodes[a].hints.stats["hints_delivered"] == 20
    assert loop.request(a, "listpendinghints") == []


def test_without_hints_the_replica_stays_stale(tmp_path):
    loop = Loop(tmp_path, hinted_handoff_enabled=False)
    loop.setup_table()
    a, b, c = loop.eps
    _kill_and_convict(loop, c)
    loop.request(a, "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="QUORUM")
    _revive(loop, c)
    assert loop.local(c, 1) is None


def test_a_replica_that_times_out_is_hinted(tmp_path):
    loop = Loop(tmp_path, phi=8.0)
    loop.setup_table()
    a, b, c = loop.eps
    loop.blocked.add((a, c))
    loop.request(a, "insert", keyspace="ks", table="kv", row={"k": 9, "v": "late"}, consistency="QUORUM")
    loop.advance(2500)                       # the write deadline passes without c's ack
    assert loop.request(a, "listpendinghints")[0]["hints"] == 1
    loop.blocked.clear()
    loop.advance(3000)                       # deliveries lost while blocked are retried after their timeout
    assert loop.local(c, 9) == {"k": 9, "v": "late"}


def test_any_is_acknowledged_by_a_stored_hint_and_nothing_else_counts_it(tmp_path):
    loop = Loop(tmp_path, n=4)
    loop.setup_table(rf=1)
    a = loop.eps[0]
    key = next(k for k in range(1000)
               if loop.request(a, "getendpoints", keyspace="ks", table="kv", key={"k": k})["endpoints"] != [a])
    (replica,) = loop.request(a, "getendpoints", keyspace="ks", table="kv", key={"k": key})["endpoints"]
    _kill_and_convict(loop, replica)
    with pytest.raises(UnavailableError):
        loop.request(a, "insert", keyspace="ks", table="kv", row={"k": key, "v": "x"}, consistency="ONE")
    loop.request(a, "insert", keyspace="ks", table="kv", row={"k": key, "v": "x"}, consistency="ANY")
    assert loop.request(a, "listpendinghints")[0]["hints"] == 1
    _revive(loop, replica)
    assert loop.local(replica, key) == {"k": key, "v": "x"}


def test_too_many_hints_in_flight_is_an_overload_error(tmp_path):
    from ring.errors import OverloadedError
    loop = Loop(tmp_path, max_hints_in_flight=0)
    loop.setup_table()
    _kill_and_convict(loop, loop.eps[2])
    with pytest.raises(OverloadedError, match="max_hints_in_flight"):
        loop.request(loop.eps[0], "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="ONE")


def test_no_hints_past_the_max_hint_window(tmp_path):
    loop = Loop(tmp_path, max_hint_window_ms=3000)
    loop.setup_table()
    a, b, c = loop.eps
    _kill_and_convict(loop, c)               # down for more than 3 s already
    loop.request(a, "insert", keyspace="ks", table="kv", row={"k": 1, "v": "x"}, consistency="QUORUM")
    assert loop.request(a, "listpendinghints") == []
    loop.request(a, "truncatehints")


# -- Merkle repair --------------------------------------------------------------------------------

def test_repair_brings_a_replica_up_to_date_when_hints_are_off(tmp_path):
    loop = Loop(tmp_path, hinted_handoff_enabled=False)
    loop.setup_table()
    a, b, c = loop.eps
    for k in range(100):
        loop.request(a, "insert", keyspace="ks", table="kv", row={"k": k, "v": "before"}, consistency="ALL")
    _kill_and_convict(loop, c)
    for k in range(0, 100, 10):
        loop.request(a, "insert", keyspace="ks", table="kv", row={"k": k, "v": "missed"}, consistency="QUORUM")
    _revive(loop, c)
    assert loop.local(c, 10)["v"] == "before"
    preview = loop.request(a, "repair", keyspace="ks", table="kv", preview=True)
    assert preview["ranges_out_of_sync"] >= 1 and preview["rows_streamed"] == 0
    assert loop.local(c, 10)["v"] == "before"                      # preview streams nothing
    summary = loop.request(a, "repair", keyspace="ks", table="kv")
    assert summary["ranges_compared"] >= 16 and summary["ranges_out_of_sync"] >= 1
    assert 10 <= summary["rows_streamed"] <= 5 * 2 * 10               # only the differing leaves travel
    assert all(loop.local(c, k)["v"] == ("missed" if k % 10 == 0 else "before") for k in range(100))
    again = loop.request(a, "repair", keyspace="ks", table="kv")
    assert again["ranges_out_of_sync"] == 0 and again["rows_streamed"] == 0   # in sync now; harmless to repeat


def test_repair_needs_every_replica_up(tmp_path):
    from ring.errors import RepairFailure
    loop = Loop(tmp_path)
    loop.setup_table()
    _kill_and_convict(loop, loop.eps[2])
    with pytest.raises(RepairFailure, match="are down"):
        loop.request(loop.eps[0], "repair", keyspace="ks", table="kv")


def test_placement_follows_the_ring_and_each_keyspace(loop):
    """Node.replicas caches SimpleStrategy placement per ring position: the answers must stay those
    of the strategy itself, for keyspaces of different RF asked in turn and after the ring changes."""
    from ring.placement.pending import Topology
    from ring.placement.strategy import SimpleStrategy
    loop.setup_table(rf=2)
    loop.request(loop.eps[0], "create_keyspace", name="ks1", replication={"class": "SimpleStrategy",
                                                                           "replication_factor": 1})
    loop.advance(2000)
    node = loop.nodes[loop.eps[0]]
    rng = random.Random(7)
    tokens = [rng.randrange(-2**63 + 1, 2**63) for _ in range(300)]
    for ring in (node.ring, node.ring.without_endpoint(loop.eps[1])):
        node.placement.set_topology(Topology(ring, ring, node.topology.status))
        for tok in tokens:
            for ks, rf in (("ks", 2), ("ks1", 1)):
                assert node.replicas(ks, tok) == SimpleStrategy(rf).replicas(ring, tok), (ks, tok)
    assert loop.eps[1] not in {ep for tok in tokens for ep in node.replicas("ks", tok)}
