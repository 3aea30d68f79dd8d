"""The request flows of the client's ClientCore, driven by a scripted transport (no sockets):
retries, stale metadata, schema agreement, request ids; and the sync and async drivers' glue,
which must carry out the same flow."""
from __future__ import annotations

import asyncio

import pytest

from ring import errors as ring_errors
from ring.client import (READ_OPS, AsyncCluster, ClientCore, Cluster, ConnectionLost,
                         ConnectionRefused, NoHostAvailable, OperationTimedOut)
from ring.client.protocol import Pause, Send
from ring.consistency import ConsistencyLevel as CL
from ring.messages import ClientResponse
from ring.runtime.frames import (error_to_wire)


# -- request flows (ClientCore, scripted transport) ----------------------------------------------

class Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def core(contact_points=("a:1", "b:1"), clock=None) -> ClientCore:
    return ClientCore(list(contact_points), clock=clock or Clock(), seed=0)


def drive(flow, answer, sent: list | None = None):
    """Run a flow: `answer(Send)` is a result, or an exception the transport raises. Pauses advance
    nothing (the flow's clock is the test's)."""
    sent = [] if sent is None else sent
    try:
        effect = next(flow)
        while True:
            if isinstance(effect, Pause):
                sent.append(effect)
                effect = flow.send(None)
                continue
            sent.append(effect)
            outcome = answer(effect)
            if isinstance(outcome, BaseException):
                effect = flow.throw(outcome)
            else:
                effect = flow.send(outcome if isinstance(outcome, ClientResponse)
                                   else ClientResponse(effect.request.id, outcome, None))
    except StopIteration as stop:
        return stop.value


def by_endpoint(outcomes: dict):
    return lambda send: outcomes[send.endpoint]


@pytest.mark.parametrize("failure,write_moves_on", [
    (ConnectionRefused("refused"), True),
    (ConnectionLost("reset"), False),
    (OperationTimedOut("a:1", 1.0), False),
])
def test_retry_rules(failure, write_moves_on):
    outcomes = {"a:1": failure, "b:1": "ok"}
    sent: list = []
    assert drive(core().ask("get", {}), by_endpoint(outcomes), sent) == "ok"   # reads always move on
    assert [s.endpoint for s in sent] == ["a:1", "b:1"]
    sent = []
    if write_moves_on:
        assert drive(core().ask("insert", {}), by_endpoint(outcomes), sent) == "ok"
        assert [s.endpoint for s in sent] == ["a:1", "b:1"]
    else:
        with pytest.raises(type(failure)):
            drive(core().ask("insert", {}), by_endpoint(outcomes), sent)
        assert [s.endpoint for s in sent] == ["a:1"]


def test_a_transport_failure_makes_the_metadata_stale():
    c = core()
    c.metadata.refreshed_at = 100.0
    drive(c.ask("get", {}), by_endpoint({"a:1": ConnectionLost("reset"), "b:1": "ok"}))
    assert c.metadata.refreshed_at == float("-inf")


def test_server_errors_are_raised_not_retried():
    sent: list = []
    error = error_to_wire(ring_errors.ReadTimeout(CL.ONE, 0, 1))
    with pytest.raises(ring_errors.ReadTimeout, match="Operation timed out"):
        drive(core().ask("get", {}), lambda send: ClientResponse(send.request.id, None, error), sent)
    assert len(sent) == 1


def test_no_host_available_lists_every_failure():
    outcomes = {"a:1": ConnectionRefused("refused a"), "b:1": ConnectionRefused("refused b")}
    with pytest.raises(NoHostAvailable, match="a:1: refused a; b:1: refused b"):
        drive(core().ask("insert", {}), by_endpoint(outcomes))


def test_pinned_admin_requests():
    sent: list = []
    assert drive(core().ask("flush", {"endpoint": "b:1", "x": 1}), by_endpoint({"a:1": "x", "b:1": "y"}), sent) == "y"
    assert [(s.endpoint, s.request.args) for s in sent] == [("b:1", {"x": 1})]


def test_request_ids_count_up_from_one_per_client():
    c, sent = core(), []
    for _ in range(3):
        drive(c.ask("get", {}), lambda send: "ok", sent)
    assert [s.request.id for s in sent] == [1, 2, 3]


def test_read_ops_are_the_idempotent_ones():
    assert {"insert", "delete", "create_table", "flush", "compact"}.isdisjoint(READ_OPS)


def node_answers(version_of=lambda ep: "v1"):
    """A scripted cluster of nodes a:1 and b:1 answering describe calls and writes."""
    ring = {"endpoints": {ep: {"datacenter": "dc1", "rack": "r1", "status": "UP", "tokens": [i]}
                          for i, ep in enumerate(["a:1", "b:1"])}, "keyspaces": {}}

    def answer(send: Send):
        op = send.request.op
        if op == "describe_ring":
            return ring
        if op == "describe_schema":
            return {"tables": [], "version": version_of(send.endpoint)}
        return f"{op} done"
    return answer


def test_a_call_refreshes_stale_metadata_first_and_then_not_again():
    clock = Clock()
    c, sent = core(clock=clock), []
    assert drive(c.call("insert", {}), node_answers(), sent) == "insert done"
    assert [s.request.op for s in sent] == ["describe_ring", "describe_schema", "insert"]
    assert c.metadata.refreshed_at == clock.now and sorted(c.metadata.endpoints) == ["a:1", "b:1"]
    sent.clear()
    clock.now += 1
    drive(c.call("insert", {}), node_answers(), sent)
    assert [s.request.op for s in sent] == ["insert"]
    clock.now += 10   # past REFRESH_INTERVAL_S
    sent.clear()
    drive(c.call("insert", {}), node_answers(), sent)
    assert [s.request.op for s in sent] == ["describe_ring", "describe_schema", "insert"]


def test_schema_changes_wait_for_every_up_node_to_agree():
    c, sent = core(), []
    assert drive(c.call("create_table", {}), node_answers(), sent) == "create_table done"
    ops = [(s.request.op, s.endpoint) for s in sent]
    assert [op for op, _ in ops[:3]] == ["describe_ring", "describe_schema", "create_table"]
    after = ops[3:]   # a refresh, each Up node asked for its schema version (they agree at once), a refresh
    assert [op for op, _ in after] == ["describe_ring", "describe_schema", "describe_schema", "describe_schema",
                                       "describe_ring", "describe_schema"]
    assert sorted(ep for _, ep in after[2:4]) == ["a:1", "b:1"]


def test_schema_disagreement_polls_until_the_deadline():
    clock = Clock()
    c, sent = core(clock=clock), []

    def answer(send):
        if isinstance(send, Send) and send.request.op == "describe_ring":
            clock.now += 1.0   # each round costs a second of the test's clock
        return node_answers(version_of=lambda ep: ep)(send)
    assert drive(c.agree_on_schema(timeout_s=3.0), answer, sent) is False
    pauses = [s for s in sent if isinstance(s, Pause)]
    assert 2 <= len(pauses) <= 3 and c.metadata.refreshed_at == clock.now


def test_an_unreachable_node_does_not_block_agreement():
    c = core()
    drive(c.refresh(), node_answers())

    def answer(send):
        if send.endpoint == "b:1" and send.request.op == "describe_schema":
            return ConnectionRefused("down")
        return node_answers()(send)
    assert drive(c.agree_on_schema(), answer) is True


# -- the drivers' glue: both carry out the same flow ---------------------------------------------

class FakeConnection:
    def __init__(self, outcome):
        self.outcome = outcome

    def request(self, req, timeout_s):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return ClientResponse(req.id, self.outcome, None)


def test_sync_driver_throws_transport_failures_into_the_flow():
    outcomes = {"a:1": ConnectionRefused("refused"), "b:1": "ok"}
    cluster, tried = Cluster(list(outcomes), seed=0), []

    def connection(ep):
        tried.append(ep)
        if isinstance(outcomes[ep], ConnectionRefused):
            raise outcomes[ep]   # as Connection() does when it cannot connect
        return FakeConnection(outcomes[ep])
    cluster._connection = connection
    assert cluster.run(cluster.ask("insert", {})) == "ok" and tried == ["a:1", "b:1"]
    with pytest.raises(NoHostAvailable):
        cluster.run(cluster.ask("insert", {"endpoint": "a:1"}))


def test_async_driver_throws_transport_failures_into_the_flow():
    outcomes = {"a:1": ConnectionLost("reset"), "b:1": "ok"}
    cluster, tried = AsyncCluster(list(outcomes), seed=0), []

    class AsyncFakeConnection(FakeConnection):
        async def request(self, req, timeout_s):
            return FakeConnection.request(self, req, timeout_s)

    async def connection(ep):
        tried.append(ep)
        return AsyncFakeConnection(outcomes[ep])
    cluster._connection = connection
    assert asyncio.run(cluster.run(cluster.ask("get", {}))) == "ok" and tried == ["a:1", "b:1"]
    with pytest.raises(ConnectionLost):
        asyncio.run(cluster.run(cluster.ask("insert", {})))


def test_metadata_after_ddl_holds_the_change_even_if_a_refresh_read_a_lagging_node():
    """The refresh inside agreement may read a node that has not heard of the new table yet while
    the version check that follows already agrees; the metadata is refreshed once more after it."""
    from engine.schema import make_table
    table = make_table("ks", "t", {"k": "int"}, "k").to_dict()
    calls = {"n": 0}
    base = node_answers()

    def answer(send):
        if send.request.op == "describe_schema":
            calls["n"] += 1
            lagging = calls["n"] <= 2  # before the DDL, and the first refresh after it
            return {"tables": [] if lagging else [table], "version": "v1"}
        return base(send)
    c = core()
    drive(c.call("create_table", {}), answer)
    assert ("ks", "t") in c.metadata.tables
