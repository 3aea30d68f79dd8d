"""A restarted ring member opens its CQL port only once gossip settled (ring/gossip_settle.py).

Sans-IO nodes in one message loop (tests/ring/test_node.py's Loop), then real processes: a node
restarted while every peer is paused keeps its CQL port closed, and once the peers resume it opens
it with both peers in system.peers. Before, the port opened at once with an empty system.peers, and
a driver whose control connection landed there dropped every other host (a CI failure)."""
import random
import time

import pytest

from engine.store import Store
from ring.gossip_settle import SETTLE_ROUNDS, saved_peers
from ring.node import Node
from tests.ring.test_node import Loop
from tools.cluster import LocalCluster
from tools.cluster.waits import accepts_connections


def restart(loop: Loop, tmp_path, ep: str) -> Node:
    """Close `ep`'s store and start a new Node on the same directory (a process restart)."""
    old = loop.nodes[ep]
    old.store.close()
    i = loop.eps.index(ep)
    store = Store.open(str(tmp_path / f"n{i}"), background=False, clock=loop.clock)
    node = loop.nodes[ep] = Node(old.config, store, random.Random(100 + i), loop.clock)
    loop._run(node.start(loop.now), ep)
    return node


def test_members_are_saved_once_settled_and_a_restart_waits_for_one_exchange(tmp_path):
    loop = Loop(tmp_path)
    for ep, node in loop.nodes.items():
        assert saved_peers(node.store) == frozenset(loop.eps) - {ep}
        assert node.gossip_settled(loop.now)
    ep = loop.eps[1]
    node = restart(loop, tmp_path, ep)
    assert not node.gossip_settled(loop.now)            # knows only itself: system.peers would be empty
    assert saved_peers(node.store) == frozenset(loop.eps) - {ep}   # that view is never saved
    started = loop.now
    loop.pump()            # its SYN to the seed carries only itself: the seed's ACK brings no other state
    assert not node.gossip_settled(loop.now)
    while not node.gossip_settled(loop.now):           # until a peer's SYN lists every endpoint it knows
        loop.advance(100)
        loop.pump()
    assert loop.now - started < SETTLE_ROUNDS * node.config.gossip_interval_ms
    assert set(node.gossiper.states) == set(loop.eps)   # the whole view at once, as system.peers shows it


def test_a_restart_with_every_peer_down_serves_after_the_settle_rounds(tmp_path):
    loop = Loop(tmp_path)
    ep = loop.eps[2]
    loop.down.update(e for e in loop.eps if e != ep)
    node = restart(loop, tmp_path, ep)
    started = loop.now
    while not node.gossip_settled(loop.now):
        loop.advance(100)
        loop.pump()
    assert loop.now - started == SETTLE_ROUNDS * node.config.gossip_interval_ms
    assert saved_peers(node.store) == frozenset(loop.eps) - {ep}   # still NORMAL members, only down


def test_a_new_node_and_a_lone_node_are_settled_at_once(tmp_path):
    loop = Loop(tmp_path, n=1)
    (ep,) = loop.eps
    assert loop.nodes[ep].gossip_settled(loop.now) and saved_peers(loop.nodes[ep].store) == frozenset()
    node = restart(loop, tmp_path, ep)
    assert node.gossip_settled(loop.now)                # alone before: nothing to wait for


def port_of(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


@pytest.mark.slow
def test_a_restarted_process_opens_cql_after_gossip_with_its_peers_listed(tmp_path):
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy
    # n2 opens CQL at the latest SETTLE_ROUNDS x 1 s after it starts; n1 and n3 are resumed well
    # before that (>= 2 s of margin, one gossip round is 1 s), so n2 settles by an exchange with
    # them, not by its deadline (with 500 ms rounds a slow start left too little margin: CI saw
    # the deadline open CQL before the exchange, and the driver found no peers)
    settings = {"gossip_interval_ms": 1000, "num_tokens": 4, "log_level": "WARNING"}
    with LocalCluster.create("settle", n=3, root=str(tmp_path), settings=settings) as cluster:
        cluster.start(timeout_s=60)
        n1, n2, n3 = cluster.nodes
        cluster.pause(n1)
        cluster.pause(n3)
        cluster.kill(n2)
        started = time.monotonic()
        cluster.start([n2], wait=False)
        deadline = started + 30
        while not accepts_connections(n2.endpoint):     # the internode/own-protocol port: the process is up
            assert time.monotonic() < deadline
            time.sleep(0.02)
        closed_until = max(started + 2.0, time.monotonic() + 0.5)  # < SETTLE_ROUNDS x 1 s after the start
        while time.monotonic() < closed_until:
            assert not accepts_connections(n2.cql_endpoint), "CQL opened before gossip settled"
            time.sleep(0.05)
        cluster.resume(n1)
        cluster.resume(n3)
        host, port = port_of(n2.cql_endpoint)
        while not accepts_connections(n2.cql_endpoint):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        profile = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([host]))
        driver = Cluster([host], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
        try:
            session = driver.connect()
            peers = {str(row.peer) for row in session.execute("SELECT peer FROM system.peers")}
            assert peers == {port_of(n1.endpoint)[0], port_of(n3.endpoint)[0]}
            assert len(driver.metadata.all_hosts()) == 3
        finally:
            driver.shutdown()
