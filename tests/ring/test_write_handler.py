"""WriteHandler: one replica is one acknowledgement, however many times its response arrives.

Found by a swarm sweep (`dynatable sim --sweep 1..50 --levels random`, seed 22, ALL/ONE): the
simulated network duplicated a replica's MutationResponse, the coordinator counted it twice and
answered an ALL write that the third replica never received; a later read at ONE from that
replica returned the older value.
"""
from ring import consistency as cl
from ring.coordinator import WriteHandler
from ring.messages import MutationResponse, Reply

REPLICAS = {"n1": "dc1", "n2": "dc1", "n3": "dc1"}


def _handler(level: str) -> WriteHandler:
    h = WriteHandler(7, cl.ConsistencyLevel.parse(level), {"dc1": 3}, "dc1", dict(REPLICAS), deadline_ms=1000)
    h.sent_to = set(REPLICAS)
    h.result = {"timestamp": 1}
    return h


def test_a_duplicated_response_is_not_a_second_acknowledgement():
    h = _handler("ALL")
    assert h.on_reply(1, "n1", MutationResponse(1, None)) == []
    assert h.on_reply(2, "n2", MutationResponse(1, None)) == []
    assert h.on_reply(3, "n2", MutationResponse(1, None)) == []      # the network delivered it twice
    assert not h.done
    [reply] = h.on_reply(4, "n3", MutationResponse(1, None))
    assert isinstance(reply, Reply) and reply.error is None


def test_quorum_still_answers_at_two_distinct_replicas():
    h = _handler("QUORUM")
    assert h.on_reply(1, "n1", MutationResponse(1, None)) == []
    assert h.on_reply(2, "n1", MutationResponse(1, None)) == []
    [reply] = h.on_reply(3, "n3", MutationResponse(1, None))
    assert reply.error is None
