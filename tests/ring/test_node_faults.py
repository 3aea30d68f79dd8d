"""Malformed internode messages are rejected at decode; any other exception in the node is a bug
that reaches its driver: the simulator fails the run, the TCP runtime logs it and keeps serving.
"""
from __future__ import annotations

import logging
import socket
import time

import pytest

from engine.errors import InvalidRequest
from ring.messages import GossipSyn, MutationRequest, ReadResponse, decode, encode, packb
from ring.runtime import frames
from ring.runtime.frames import FrameDecoder, encode_frame
from ring.runtime.sim import Simulation
from tests.ring.test_runtime_smoke import NodeThread, SendingNode


@pytest.mark.parametrize("wire,expect", [
    (packb([10, 1, "t", 7, b"p"]), "malformed MutationRequest: field key must be bytes, got int"),
    (packb([10, 1, "t", b"k"]), "malformed MutationRequest: 3 fields, expected 4"),
    (packb([12, 1, "t", b"k", b"", None, 1]), "malformed ReadRequest: field digest_only must be bool, got int"),
    (packb([13, True, None, b"", None]), "malformed ReadResponse: field id must be int, got bool"),
    (packb([1, "dynatable", {"not": "a list"}]), "malformed GossipSyn: field digests must be list, got dict"),
    (packb([11, 1, 5]), "malformed MutationResponse: field error must be str or None, got int"),
    (packb([99, 1]), "unknown message type 99"),
])
def test_decode_rejects_a_malformed_message_naming_it(wire, expect):
    with pytest.raises(InvalidRequest) as e:
        decode(wire)
    assert str(e.value) == expect


def test_decode_accepts_every_well_formed_message():
    for msg in (MutationRequest(1, "t", b"k", b"p"), ReadResponse(2, None, b"d", None), GossipSyn("c", [])):
        assert decode(encode(msg)) == msg


# -- the simulator -------------------------------------------------------------------------------

def test_sim_counts_and_drops_a_malformed_message(tmp_path):
    with Simulation(1, nodes=2, root=str(tmp_path)) as sim:
        sim.run_for(3000)
        n1, n2 = sim.nodes["n1"].endpoint, sim.nodes["n2"].endpoint
        sim._schedule(sim.now_ms + 1, "deliver", (n1, n2, packb([10, 1, "t", 7, b"p"])))
        sim.run_for(1000)
        assert sim.counters["malformed"] == 1
        assert sim.converged()  # the run goes on


def test_sim_fails_the_run_when_a_node_raises(tmp_path):
    with Simulation(1, nodes=2, root=str(tmp_path)) as sim:
        sim.run_for(3000)
        node = sim.nodes["n2"].node

        def broken(now_ms, src, msg):  # a bug in the node, injected
            raise KeyError("bug")
        node.step = broken
        with pytest.raises(KeyError) as e:
            sim.run_for(3000)
        assert any("in n2.step(Gossip" in note and "seed 1" in note for note in e.value.__notes__)


# -- the TCP runtime -----------------------------------------------------------------------------

class RaisingNode(SendingNode):
    """A stand-in node with a bug: GossipSyn("boom") raises inside step."""

    def step(self, now_ms, src, msg):
        if isinstance(msg, GossipSyn) and msg.cluster_name == "boom":
            raise RuntimeError("a bug in the node")
        return super().step(now_ms, src, msg)


def _peer_socket(endpoint: str, me: str) -> socket.socket:
    host, port = endpoint.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=5)
    handshake = frames.ConnectorHandshake("peer", me, "dynatable")
    sock.sendall(handshake.start())
    decoder = FrameDecoder()
    while not handshake.done:
        decoder.feed(sock.recv(65536))
        while (payload := decoder.next_payload()) is not None:
            reply = handshake.receive(payload)
            if reply:
                sock.sendall(reply)
    return sock


def _wait(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_tcp_runtime_rejects_malformed_peer_messages_and_survives_node_errors(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr("tests.ring.test_runtime_smoke.SendingNode", RaisingNode)
    n = NodeThread(tmp_path)
    try:
        caplog.set_level(logging.WARNING, logger="dynatable.runtime")
        me = "127.0.0.1:1"
        with _peer_socket(n.endpoint, me) as sock:
            sock.sendall(encode_frame(packb([10, 1, "t", 7, b"p"])))        # malformed: skipped
            sock.sendall(encode_frame(encode(GossipSyn("boom", []))))       # the node raises
            sock.sendall(encode_frame(encode(GossipSyn("after", []))))      # still served
            node = n.process.node
            assert _wait(lambda: [m.cluster_name for _, m in node.received] == ["after"])
        stats = n.process.stats
        assert stats["malformed_messages"] == 1 and stats["node_errors"] == 1
        logged = caplog.text
        assert "rejected a message from peer 127.0.0.1:1: malformed MutationRequest: field key" in logged
        assert "node.step failed on GossipSyn from 127.0.0.1:1" in logged and "a bug in the node" in logged
    finally:
        n.stop()
