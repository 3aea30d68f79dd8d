"""The server's point lane (server.py, point.py) against the general path: the limits are decided
in arrival order whichever path a statement takes, and a point RESULT that cannot be made (a row
that no longer fits the prepared statement's types) is answered on its stream, as the general path
answers it (INVALID), on every route a point EXECUTE can take: the lane (a compressed v4 frame,
cassandra-driver with lz4, included) and a traced frame, which goes through point.PointExecution."""
from __future__ import annotations

import pytest
from cassandra import ConsistencyLevel
from cassandra.protocol import ExecuteMessage, PrepareMessage, QueryMessage, StartupMessage

from ring.cql.server import NativeServer
from ring.messages import Reply
from ring.runtime.native_transport import schema_view
from tests.cql.driver import decode_responses, request_bytes
from tests.cql.test_execute import cluster
from tests.cql.test_point import I32

OVERLOADED, INVALID, SERVER_ERROR = 0x1001, 0x2200, 0x0000


@pytest.fixture(scope="module")
def cql():
    c = cluster()
    c.ok("n1", "CREATE TABLE ks.kv (k int PRIMARY KEY, v blob)")
    c.agree()
    yield c
    c.sim.close()


def _ready(cql, options=None, **limits):
    node = cql.sim.nodes["n1"].node
    server = NativeServer(node, **limits)
    server.observe_schema(schema_view(node))
    conn = server.connect()
    conn.receive_data(request_bytes(StartupMessage(cqlversion="3.4.5", options=options or {}), 1, 4))
    conn.receive_data(b"")
    return server, conn


def _prepare(conn, query: str, **kw):
    (_, prepared), = decode_responses(conn.receive_data(request_bytes(PrepareMessage(query), 2, 4, **kw)).data,
                                      **kw)
    return prepared


def _execute(prepared, values, stream: int, tracing: bool = False, **kw) -> bytes:
    frame = bytearray(request_bytes(ExecuteMessage(prepared.query_id, values, ConsistencyLevel.QUORUM), stream, 4,
                                    **kw))
    if tracing:
        frame[1] |= 0x02                         # the tracing flag: the lane leaves it to the general path
    return bytes(frame)


def _answers(data: bytes, **kw) -> list[tuple[int, int]]:
    return [(h.stream, m.code) for h, m in decode_responses(data, **kw)]


QUERY = request_bytes(QueryMessage("INSERT INTO ks.kv (k, v) VALUES (7, 0x00)", ConsistencyLevel.ONE), 21, 4)


@pytest.mark.parametrize("point_path", [True, False])
@pytest.mark.parametrize("first", ["query", "traced execute"])
def test_the_per_connection_limit_refuses_the_later_statement_of_one_read(cql, point_path, first):
    server, conn = _ready(cql, max_requests_per_connection=1, point_path=point_path)
    ins = _prepare(conn, "INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    earlier = QUERY if first == "query" else _execute(ins, [I32.pack(1), b"x"], 21, tracing=True)
    out = conn.receive_data(earlier + _execute(ins, [I32.pack(2), b"x"], 22))
    assert _answers(out.data) == [(22, OVERLOADED)]
    assert len(out.requests) == 1 and server.in_flight == 1 and not conn.points


@pytest.mark.parametrize("point_path", [True, False])
def test_the_node_limit_refuses_the_later_statement_of_one_read(cql, point_path):
    server, conn = _ready(cql, max_concurrent_requests=1, point_path=point_path)
    ins = _prepare(conn, "INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    out = conn.receive_data(QUERY + _execute(ins, [I32.pack(2), b"x"], 22))
    assert _answers(out.data) == [(22, OVERLOADED)] and server.overloaded == 1
    assert [r.args["row"]["k"] for r in out.requests] == [7]


@pytest.fixture
def drifted(cql):
    """Per route, a server with the point path and one without, each with the point SELECT of
    ks.drift prepared while v was an int; then the table is re-created with a text v (learnt as
    from a peer: no observe_schema tick, so the statement is not forgotten) and holds 'abc'."""
    cql.ok("n1", "CREATE TABLE ks.drift (k int PRIMARY KEY, v int)")
    cql.agree()
    made = []
    for point_path in (True, False):
        for route in ("lane", "traced", "lz4"):
            kw = {"compressed": True} if route == "lz4" else {}
            server, conn = _ready(cql, {"COMPRESSION": "lz4"} if route == "lz4" else None, point_path=point_path)
            made.append((point_path, route, kw, server, conn, _prepare(conn, "SELECT v FROM ks.drift WHERE k = ?",
                                                                       **kw)))
    cql.ok("n1", "DROP TABLE ks.drift")
    cql.ok("n1", "CREATE TABLE ks.drift (k int PRIMARY KEY, v text)")
    cql.ok("n1", "INSERT INTO ks.drift (k, v) VALUES (1, 'abc')")
    cql.agree()
    yield made
    cql.ok("n1", "DROP TABLE ks.drift")
    cql.agree()


def test_a_result_that_no_longer_fits_is_invalid_on_its_stream_on_every_route(cql, drifted):
    for point_path, route, kw, server, conn, select in drifted:
        out = conn.receive_data(_execute(select, [I32.pack(1)], 40, tracing=route == "traced", **kw))
        req, = out.requests
        assert bool(conn.points) == (point_path and route in ("lane", "lz4")), (point_path, route)
        reply = cql.sim.wait(cql.sim.submit("n1", req.op, **req.args))
        answer = conn.on_reply(Reply(req.id, reply.result, reply.error))          # nothing escapes it
        assert _answers(answer.data, **kw) == [(40, INVALID)], (point_path, route)
        assert server.bugs == [] and server.in_flight == 0 and not conn.executions and not conn.points
        assert not answer.close and _answers(conn.receive_data(_execute(select, [I32.pack(1)], 41, **kw)).data,
                                             **kw) == []        # the connection serves on


def test_a_bug_making_a_traced_point_result_is_a_server_error_on_its_stream(cql):
    server, conn = _ready(cql)
    select = _prepare(conn, "SELECT v FROM ks.kv WHERE k = ?")
    req, = conn.receive_data(_execute(select, [I32.pack(1)], 50, tracing=True)).requests
    assert not conn.points                                     # the general path's PointExecution
    answer = conn.on_reply(Reply(req.id, 42, None))           # not rows: the RESULT maker raises TypeError
    (header, msg), = decode_responses(answer.data)
    assert header.stream == 50 and msg.code == SERVER_ERROR and "TypeError" in msg.message
    assert len(server.bugs) == 1 and server.in_flight == 0 and not conn.executions
