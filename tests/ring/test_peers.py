"""Peers: a message sent to several replicas is encoded once, and a later message never reuses
an earlier message's frame (the frame cache is keyed by the message object itself)."""
import asyncio
import collections

from ring.messages import MutationRequest, ReadRequest, decode
from ring.runtime.config import NodeSettings
from ring.runtime.frames import FrameDecoder
from ring.runtime.peers import Peers

REMOTES = ("127.0.0.2:1", "127.0.0.3:1")   # nothing listens there: the frames stay queued


def _queued(peers: Peers, ep: str) -> list:
    decoder = FrameDecoder()
    for _, frame in peers.links[ep].queue:
        decoder.feed(frame)
    out = []
    while (payload := decoder.next_payload()) is not None:
        out.append(decode(payload))
    return out


def test_one_message_to_two_replicas_then_other_messages():
    async def run():
        peers = Peers("127.0.0.1:1", NodeSettings(), collections.Counter(), lambda src, msg: None)
        try:
            first = MutationRequest(1, "t", b"k", b"payload-1")
            for ep in REMOTES:
                peers.send(ep, first)
            assert peers.links[REMOTES[0]].queue[0][1] is peers.links[REMOTES[1]].queue[0][1]  # encoded once
            second = MutationRequest(2, "t", b"k", b"payload-2")   # equal shape, other content
            peers.send(REMOTES[0], second)
            digest = ReadRequest(3, "t", b"k", b"", None, True)
            for ep in REMOTES:
                peers.send(ep, digest)
            peers.send(REMOTES[1], first)                           # an older message again
            return _queued(peers, REMOTES[0]), _queued(peers, REMOTES[1])
        finally:
            await peers.close()
    to_a, to_b = asyncio.run(run())
    assert [m.id for m in to_a] == [1, 2, 3] and to_a[1].payload == b"payload-2"
    assert [m.id for m in to_b] == [1, 3, 1] and to_b[2].payload == b"payload-1"
