"""Pure topology decisions (ring/placement/pending.py) and streaming twice being harmless."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ring import membership as ms
from ring.placement.pending import pending_index, range_movements, replication_shortfall, topology_from_states
from ring.placement.snitch import PropertyFileSnitch
from ring.placement.strategy import SimpleStrategy
from ring.placement.token_ring import TokenRing, allocate_tokens, range_contains
from ring.runtime.sim import Simulation

SNITCH = PropertyFileSnitch({}, default=("dc1", "r1"))


def _state(status: str, tokens: list[int], version: int = 1) -> ms.EndpointState:
    return ms.EndpointState(ms.HeartbeatState(1, version), {
        ms.ApplicationState.STATUS: ms.VersionedValue(ms.status_value(ms.Status(status), tokens[0]), version),
        ms.ApplicationState.TOKENS: ms.VersionedValue(ms.tokens_value(tokens), version)})


rings = st.integers(2, 6).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, 3), st.integers(0, 10_000)))


@settings(max_examples=40, deadline=None)
@given(rings, st.sampled_from(["BOOT", "LEAVING", "removing"]), st.lists(st.integers(-2**63 + 1, 2**63 - 1),
                                                                        min_size=20, max_size=20))
def test_pending_and_movements_cover_exactly_the_new_replicas(spec, change, probes):
    n, rf, salt = spec
    tokens = {f"e{i}": allocate_tokens(f"h{salt}-{i}", 4) for i in range(n)}
    states = {ep: _state("NORMAL", t) for ep, t in tokens.items()}
    mover = "e0"
    if change == "BOOT":
        mover = "new"
        states[mover] = _state("BOOT", allocate_tokens(f"h{salt}-new", 4))
    else:
        states[mover] = _state(change, tokens[mover])
    topo = topology_from_states(states)
    assert topo.moving
    strategy = SimpleStrategy(rf)
    if change == "BOOT":
        assert mover not in topo.current.endpoints and mover in topo.future.endpoints
    else:
        assert mover in topo.current.endpoints and mover not in topo.future.endpoints
    index = pending_index(strategy, topo, SNITCH)
    moves = range_movements(strategy, topo.current, topo.future, SNITCH)
    for t in probes:
        now = strategy.replicas(topo.current, t, SNITCH)
        then = strategy.replicas(topo.future, t, SNITCH)
        pending = index.lookup(t)
        # writes reach every future replica: natural + pending is a superset of the future set
        assert set(then) <= set(now) | set(pending)
        assert not set(pending) & set(now)
        # exactly one movement brings each new replica its copy of the range holding t
        gained = {m.target for m in moves if range_contains((m.lo, m.hi), t)}
        assert gained == set(then) - set(now)
        for m in moves:
            if range_contains((m.lo, m.hi), t):
                assert set(m.sources) == set(now) and m.target not in m.sources
                losing = [ep for ep in m.sources if ep not in then]
                assert list(m.sources[:len(losing)]) == losing  # those losing the range come first


def test_no_pending_without_a_move():
    states = {f"e{i}": _state("NORMAL", allocate_tokens(f"x{i}", 4)) for i in range(3)}
    topo = topology_from_states(states)
    assert not topo.moving
    assert pending_index(SimpleStrategy(3), topo, SNITCH).lookup(0) == ()


def test_replication_shortfall():
    ring = TokenRing.from_endpoints({"a": [1], "b": [2]})
    assert replication_shortfall(SimpleStrategy(3), ring, SNITCH) == "RF = 3, N = 2"
    assert replication_shortfall(SimpleStrategy(2), ring, SNITCH) is None


def test_streaming_the_same_ranges_twice_is_harmless():
    """A FetchRanges repeated (e.g. by a retried removenode) yields the same local data."""
    sim = Simulation(21, 3, node_options={"gossip_interval_ms": 200, "ring_delay_ms": 500, "num_tokens": 4})
    sim.run_until(5000, stop=sim.converged)
    sim.request("n1", "create_keyspace", name="ks", replication={"class": "SimpleStrategy", "replication_factor": 1})
    sim.request("n1", "create_table", keyspace="ks", name="kv", columns={"k": "int", "v": "text"}, primary_key="k")
    sim.run_for(2000)
    for k in range(200):
        sim.request("n1", "insert", keyspace="ks", table="kv", row={"k": k, "v": f"v{k}"}, consistency="ONE")
    sim.request("n2", "delete", keyspace="ks", table="kv", key={"k": 7}, consistency="ONE")
    node3 = sim.nodes["n3"].node
    table = sim.nodes["n3"].store.table("ks", "kv")
    plan = [[table.id, lo, hi, [name]] for name in (sim.nodes["n1"].endpoint, sim.nodes["n2"].endpoint)
            for lo, hi in node3.ring.ranges_of(name)]

    def local_rows():
        return {k: sim.local_row("n3", "ks", "kv", {"k": k}, writetime=True) for k in range(200)}

    from ring.messages import FetchRanges
    snapshots = []
    for attempt in range(2):  # two operations: the second really streams everything again
        sim._perform(sim.nodes["n3"], node3.step(sim.now_ms, sim.nodes["n1"].endpoint,
                                                 FetchRanges(999, f"test:twice:{attempt}", plan)))
        sim.run_for(3000)
        snapshots.append(local_rows())
    assert snapshots[0] == snapshots[1]
    assert snapshots[0][7] is None  # the delete moved too
    copied = [k for k in range(200) if snapshots[0][k] is not None]
    assert len(copied) == 199  # n3 now holds every live row
    sim.close()
