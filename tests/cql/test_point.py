"""ring/cql/point.py, differential: the same EXECUTE frames through a server with the point path
and one without it (both on node n1 of one simulated 3-node cluster) give byte-identical
responses, and the point path is really taken for the point shapes."""
from __future__ import annotations

import struct
import types
import uuid

import pytest
from cassandra import ConsistencyLevel
from cassandra.protocol import ErrorMessage, ExecuteMessage, PrepareMessage, StartupMessage
from cassandra.query import UNSET_VALUE

from ring.cql import point
from ring.cql.server import NativeServer
from ring.messages import Reply
from ring.runtime.native_transport import schema_view
from ring.cql.segment import SegmentDecoder
from tests.cql.driver import decode_responses, request_bytes, unsegment
from tests.cql.test_execute import cluster

TABLES = (
    "CREATE TABLE ks.kv (k int PRIMARY KEY, v blob)",
    "CREATE TABLE ks.wide (k bigint, c text, s int STATIC, ts timestamp, u uuid, b blob, i int, l list<int>, "
    "m map<text, int>, f frozen<set<text>>, PRIMARY KEY (k, c))",
    "CREATE TABLE ks.two (a int, b text, c int, d int, v text, PRIMARY KEY ((a, b), c, d))",
)
I32, I64 = struct.Struct(">i"), struct.Struct(">q")


def text(s: str) -> bytes:
    return s.encode()


class Pair:
    """Two servers on one node, the point path on and off, fed the same frames."""

    def __init__(self, cql, version: int, compressed: bool = False):
        self.cql, self.version, self.node = cql, version, cql.sim.nodes["n1"].node
        self.wire = {"compressed": compressed, "segments": version >= 5}     # lz4: v4 bodies, v5 segments
        self.servers = [NativeServer(self.node, point_path=True), NativeServer(self.node, point_path=False)]
        self.conns = [s.connect() for s in self.servers]
        self.observe()
        self.feed(request_bytes(StartupMessage(cqlversion="3.4.5", options={"COMPRESSION": "lz4"} if compressed
                                               else {}), 1, version))
        for c in self.conns:
            c.receive_data(b"")
        self.stream = 10

    def observe(self):
        for s in self.servers:
            s.observe_schema(schema_view(self.node))

    def feed(self, data: bytes) -> list[bytes]:
        """Both servers' response bytes; their node requests (op and args) must be the same, but for
        a SELECT's `columns` naming every regular column, which the lane leaves out (point.py)."""
        outs, sent, self.requests = [], [], []
        for conn in self.conns:
            out = conn.receive_data(data)
            got, pending = [out.data], list(out.requests)
            sent.append([])
            while pending:
                req = pending.pop(0)
                sent[-1].append((req.op, repr(self.without_all_columns(req.op, req.args))))
                self.requests.append((conn.server.point_path, req.op, req.args))
                reply = self.cql.sim.wait(self.cql.sim.submit("n1", req.op, **req.args))
                more = conn.on_reply(Reply(req.id, reply.result, reply.error))
                got.append(more.data)
                pending += more.requests
            outs.append(b"".join(got))
        assert sent[0] == sent[1]
        return outs

    def without_all_columns(self, op: str, args: dict) -> dict:
        if op != "select" or "columns" not in args:
            return args
        table = self.node.store.keyspaces[args["keyspace"]].tables[args["table"]]
        if {c.name for c in table.regular} <= set(args["columns"]):
            return {k: v for k, v in args.items() if k != "columns"}
        return args

    def frame(self, msg) -> bytes:
        self.stream += 1
        return request_bytes(msg, self.stream, self.version, **self.wire)

    def prepare(self, query: str):
        on, off = self.feed(self.frame(PrepareMessage(query)))
        assert on == off
        (_, msg), = decode_responses(on, **self.wire)
        return msg

    def execute(self, prepared, values, consistency=ConsistencyLevel.QUORUM, **kw) -> bytes:
        on, off = self.feed(self.frame(ExecuteMessage(prepared.query_id, values, consistency,
                                                      result_metadata_id=prepared.result_metadata_id, **kw)))
        assert on == off, (on, off)
        return on

    def rows(self, prepared, values, **kw):
        (_, msg), = decode_responses(self.execute(prepared, values, **kw), **self.wire,
                                     result_metadata=prepared.column_metadata)
        return msg


@pytest.fixture(scope="module")
def cql():
    c = cluster()
    for ddl in TABLES:
        c.ok("n1", ddl)
    c.agree()
    yield c
    c.sim.close()


def point_taken(pair: Pair, prepared, values, **params) -> bool:
    """Whether point.execution accepts this EXECUTE (the server with the point path on)."""
    from ring.cql.notation import Consistency, UNSET
    from ring.cql.requests import QueryParameters
    raw = tuple(UNSET if v is UNSET_VALUE else v for v in values)
    qp = QueryParameters(Consistency.QUORUM, raw, params.get("names"), False, params.get("page_size", 5000),
                         None, None, None, None, None, bool(raw))
    conn = pair.conns[0]
    return point.execution(pair.node, conn.session, prepared.query_id, qp, lambda: 0, 4) is not None


@pytest.mark.parametrize("version, compressed", [(4, False), (4, True), (5, False), (5, True)])
def test_point_insert_and_select_are_byte_identical(cql, version, compressed):
    pair = Pair(cql, version, compressed)
    ins = pair.prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    sel = pair.prepare("SELECT v, writetime(v), ttl(v), k, token(k) FROM ks.kv WHERE k = ?")
    star = pair.prepare("SELECT * FROM ks.kv WHERE k = ?")
    for k, v in ((1, b"\x00\xff"), (2, b""), (3, None)):
        assert point_taken(pair, ins, [I32.pack(k), v])
        pair.execute(ins, [I32.pack(k), v], timestamp=1000 + k)
    pair.execute(ins, [I32.pack(4), UNSET_VALUE])
    for k in range(6):
        assert point_taken(pair, sel, [I32.pack(k)])
        pair.execute(sel, [I32.pack(k)])
        pair.execute(star, [I32.pack(k)], skip_meta=True)
        pair.execute(star, [I32.pack(k)], consistency=ConsistencyLevel.ONE)
    got = pair.rows(star, [I32.pack(1)])
    assert got.parsed_rows == [(1, b"\x00\xff")]
    assert pair.rows(star, [I32.pack(3)]).parsed_rows == [(3, None)]
    assert pair.rows(star, [I32.pack(5)]).parsed_rows == []
    on, off = pair.servers          # every EXECUTE above was a point statement: 4 inserts, 6 x 3 selects + 3
    assert (on.point_statements, off.point_statements) == (4 + 6 * 3 + 3, 0)


def test_wide_rows_types_collections_and_static(cql):
    pair = Pair(cql, 4)
    ins = pair.prepare("INSERT INTO ks.wide (k, c, s, ts, u, b, i, l, m, f) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    lit = pair.prepare("INSERT INTO ks.wide (k, c, i) VALUES (?, 'lit', 7)")
    sel = pair.prepare("SELECT * FROM ks.wide WHERE k = ? AND c = ?")
    some = pair.prepare("SELECT s, i, l, m, f, writetime(i) FROM ks.wide WHERE k = ? AND c = ?")
    static_only = pair.prepare("INSERT INTO ks.wide (k, s) VALUES (?, ?)")
    u = uuid.UUID(int=7)
    values = [I64.pack(5), text("a"), I32.pack(9), I64.pack(1_700_000_000_000), u.bytes, b"\x01", I32.pack(-3),
              struct.pack(">iii", 1, 4, 2), struct.pack(">ii", 1, 1) + b"x" + I32.pack(4) + I32.pack(5),
              struct.pack(">ii", 1, 1) + b"z"]
    pair.execute(ins, values, timestamp=10)
    pair.execute(ins, values[:2] + [None] * 8, timestamp=5)            # older nulls lose
    pair.execute(ins, [I64.pack(6), text("b")] + [None, UNSET_VALUE] * 4, timestamp=20)
    assert point_taken(pair, lit, [I64.pack(5)])
    pair.execute(lit, [I64.pack(5)])
    assert point_taken(pair, static_only, [I64.pack(8), I32.pack(1)])
    pair.execute(static_only, [I64.pack(8), I32.pack(1)])
    for k, c in ((5, "a"), (5, "lit"), (6, "b"), (8, "none"), (9, "x")):
        assert point_taken(pair, sel, [I64.pack(k), text(c)])
        pair.execute(sel, [I64.pack(k), text(c)])
        pair.execute(sel, [I64.pack(k), text(c)], fetch_size=100)
        pair.execute(some, [I64.pack(k), text(c)])
        pair.execute(some, [I64.pack(k), text(c)], paging_state=None, fetch_size=1)   # page 1: general path
    got = pair.rows(sel, [I64.pack(5), text("a")])
    (row,) = [dict(zip(got.column_names, r)) for r in got.parsed_rows]
    assert (row["k"], row["c"], row["s"], row["u"], row["i"], row["l"], row["m"], row["f"], row["b"]) == (
        5, "a", 9, u, -3, [2], {"x": 5}, {"z"}, b"\x01")
    two = pair.prepare("SELECT v FROM ks.two WHERE a = ? AND b = ? AND c = ? AND d = ?")
    put = pair.prepare("INSERT INTO ks.two (a, b, c, d, v) VALUES (?, ?, ?, ?, ?)")
    pair.execute(put, [I32.pack(1), text("x"), I32.pack(2), I32.pack(3), text("v")])
    assert pair.rows(two, [I32.pack(1), text("x"), I32.pack(2), I32.pack(3)]).parsed_rows == [("v",)]


def test_errors_and_odd_values_go_the_general_way_with_the_same_bytes(cql):
    pair = Pair(cql, 5)
    ins = pair.prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    sel = pair.prepare("SELECT v FROM ks.kv WHERE k = ?")
    cases = [(ins, [I32.pack(1)]), (ins, [I32.pack(1), b"v", b"extra"]), (ins, [b"\x00\x01", b"v"]),
             (ins, [None, b"v"]), (ins, [UNSET_VALUE, b"v"]), (ins, [b"", b"v"]), (sel, [None]), (sel, [UNSET_VALUE]),
             (sel, [b"\x01\x02\x03"]), (sel, [])]
    for prepared, values in cases:
        assert not point_taken(pair, prepared, values)
        out = pair.execute(prepared, values)
        (_, msg), = decode_responses(out, segments=True)
        assert isinstance(msg, ErrorMessage), (values, msg)
    pair.execute(sel, [I32.pack(1)], consistency=ConsistencyLevel.SERIAL)
    unknown = types.SimpleNamespace(query_id=b"\x00" * 16, result_metadata_id=ins.result_metadata_id)
    (_, msg), = decode_responses(pair.execute(unknown, [I32.pack(1), b"v"]), segments=True)
    assert msg.code == 0x2500                                         # Unprepared, as before
    for shape in ("SELECT v FROM ks.kv WHERE k IN (1, 2)", "SELECT v FROM ks.kv WHERE k = ? LIMIT 1",
                  "SELECT COUNT(*) FROM ks.kv WHERE k = ?", "INSERT INTO ks.kv (k, v) VALUES (?, ?) USING TTL 60",
                  "SELECT c FROM ks.wide WHERE k = ?", "SELECT v FROM ks.kv WHERE k = ? ALLOW FILTERING"):
        p = pair.prepare(shape)
        assert not isinstance(p, ErrorMessage), (shape, p)
        n = len(p.bind_metadata)
        values = [I32.pack(1)] * n if "wide" not in shape else [I64.pack(1)]
        assert not point_taken(pair, p, values)
        pair.execute(p, values)


def test_schema_change_after_prepare(cql):
    cql.ok("n1", "CREATE TABLE ks.alt (k int PRIMARY KEY, v int)")
    cql.agree()
    pair = Pair(cql, 4)
    sel = pair.prepare("SELECT * FROM ks.alt WHERE k = ?")
    ins = pair.prepare("INSERT INTO ks.alt (k, v) VALUES (?, ?)")
    pair.execute(ins, [I32.pack(1), I32.pack(2)])
    pair.execute(sel, [I32.pack(1)])
    cql.ok("n1", "ALTER TABLE ks.alt ADD w text")
    cql.agree()
    assert point_taken(pair, sel, [I32.pack(1)])      # compiled again for the new table
    pair.execute(sel, [I32.pack(1)])                   # not yet invalidated: the same stale answer
    pair.execute(ins, [I32.pack(1), I32.pack(3)])
    pair.observe()                                     # the transport's tick: statements forgotten
    (_, msg), = decode_responses(pair.execute(sel, [I32.pack(1)]))
    assert msg.code == 0x2500
    sel = pair.prepare("SELECT * FROM ks.alt WHERE k = ?")
    assert pair.rows(sel, [I32.pack(1)]).parsed_rows == [(1, 3, None)]


def _lane_server(cql, **limits):
    """A point-path server on n1, READY on v4, and the prepared point INSERT of ks.kv."""
    node = cql.sim.nodes["n1"].node
    server = NativeServer(node, **limits)
    server.observe_schema(schema_view(node))
    conn = server.connect()
    conn.receive_data(request_bytes(StartupMessage(cqlversion="3.4.5", options={}), 1, 4))
    conn.receive_data(b"")
    (_, prepared), = decode_responses(conn.receive_data(request_bytes(
        PrepareMessage("INSERT INTO ks.kv (k, v) VALUES (?, ?)"), 2, 4)).data)
    return server, conn, prepared


@pytest.mark.parametrize("version, compressed", [(4, True), (5, False), (5, True)])
def test_lane_answers_of_one_flush_are_sealed_together_with_the_general_paths_bytes(cql, version, compressed):
    """What the native transport does with the lane's answers: frames made by point_frame, then
    Connection.seal of them all: in v5 one segment (not one per answer), holding exactly the
    frames the general path answers (v4 with lz4: the same compressed frames, back to back)."""
    pair = Pair(cql, version, compressed)
    ins = pair.prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    sel = pair.prepare("SELECT * FROM ks.kv WHERE k = ?")
    frames = []
    for k in range(3):
        frames.append(pair.frame(ExecuteMessage(ins.query_id, [I32.pack(50 + k), b"z" * k], ConsistencyLevel.QUORUM,
                                                result_metadata_id=ins.result_metadata_id, timestamp=7)))
        frames.append(pair.frame(ExecuteMessage(sel.query_id, [I32.pack(1)], ConsistencyLevel.QUORUM,
                                                result_metadata_id=sel.result_metadata_id)))
    (lane, general), read = pair.conns, b"".join(frames)
    out = lane.receive_data(read)
    assert len(out.requests) == 6 and len(lane.points) == 6 and not out.data
    replies = [(req.id, cql.sim.wait(cql.sim.submit("n1", req.op, **req.args))) for req in out.requests]
    sealed = lane.connection.seal([lane.point_frame(rid, r.result, r.error) for rid, r in replies])
    expected = []
    for frame in frames:                         # the general path, one statement at a time
        one = general.receive_data(frame)
        for req in one.requests:
            reply = cql.sim.wait(cql.sim.submit("n1", req.op, **req.args))
            expected.append(general.on_reply(Reply(req.id, reply.result, reply.error)).data)
    if version >= 5:
        assert len(SegmentDecoder(compressed).feed(sealed)) == 1
        assert unsegment(sealed, compressed) == b"".join(unsegment(e, compressed) for e in expected)
    else:
        assert sealed == b"".join(expected)
    assert [m.kind for _, m in decode_responses(sealed, **pair.wire)] == [1, 2] * 3      # VOID, ROWS


def _insert_frame(prepared, k: int, stream: int) -> bytes:
    return request_bytes(ExecuteMessage(prepared.query_id, [I32.pack(k), b"x"], ConsistencyLevel.QUORUM), stream, 4)


def test_the_lane_starts_point_executes_without_an_execution_and_answers_them(cql):
    server, conn, prepared = _lane_server(cql)
    out = conn.receive_data(b"".join(_insert_frame(prepared, k, 20 + k) for k in range(3)))
    assert [r.op for r in out.requests] == ["insert"] * 3 and not conn.executions and len(conn.points) == 3
    assert server.in_flight == 3 and server.point_statements == 3
    answers = []
    for req in reversed(out.requests):                   # answered in completion order, on their streams
        reply = cql.sim.wait(cql.sim.submit("n1", req.op, **req.args))
        answers += decode_responses(conn.point_reply(req.id, reply.result, reply.error))
    assert [(h.stream, m.kind) for h, m in answers] == [(s, 1) for s in (22, 21, 20)]      # VOID
    assert conn.point_reply(out.requests[0].id, None, None) is None       # answered once
    assert server.in_flight == 0 and not conn.points


def test_the_lane_keeps_the_limits_and_a_disconnect_releases_its_requests(cql):
    server, conn, prepared = _lane_server(cql, max_requests_per_connection=2)
    out = conn.receive_data(b"".join(_insert_frame(prepared, k, 30 + k) for k in range(3)))
    assert len(out.requests) == 2 and server.in_flight == 2
    (header, msg), = decode_responses(out.data)
    assert header.stream == 32 and isinstance(msg, ErrorMessage) and msg.code == 0x1001   # Overloaded
    other = server.connect()
    server.max_concurrent_requests = 2
    other.receive_data(request_bytes(StartupMessage(cqlversion="3.4.5", options={}), 1, 4))
    other.receive_data(b"")
    (_, msg), = decode_responses(other.receive_data(_insert_frame(prepared, 9, 40)).data)
    assert msg.code == 0x1001 and not other.points
    server.disconnect(conn)
    assert server.in_flight == 0 and not conn.points


def test_a_failing_answer_on_the_lane_is_a_server_error_on_its_stream(cql):
    server, conn, prepared = _lane_server(cql)
    (select,) = [m for _, m in decode_responses(conn.receive_data(request_bytes(
        PrepareMessage("SELECT v FROM ks.kv WHERE k = ?"), 3, 4)).data)]
    req, = conn.receive_data(request_bytes(ExecuteMessage(select.query_id, [I32.pack(1)], ConsistencyLevel.QUORUM),
                                           50, 4)).requests
    (header, msg), = decode_responses(conn.point_reply(req.id, 42, None))      # not rows: the RESULT maker raises
    assert header.stream == 50 and msg.code == 0x0000 and "TypeError" in msg.message
    assert len(server.bugs) == 1 and server.in_flight == 0


def test_a_select_of_every_regular_column_asks_the_node_without_a_columns_list(cql):
    pair = Pair(cql, 4)
    pair.execute(pair.prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)"), [I32.pack(1), b"v"])
    for query, lane_columns in (("SELECT v FROM ks.kv WHERE k = ?", None),
                                ("SELECT v, writetime(v), k FROM ks.kv WHERE k = ?", None),
                                ("SELECT * FROM ks.kv WHERE k = ?", None),
                                ("SELECT i, l FROM ks.wide WHERE k = ? AND c = ?", ["i", "l"])):
        sel = pair.prepare(query)
        pair.execute(sel, [I32.pack(1)] if "kv" in query else [I64.pack(5), text("a")])
        (lane,), (general,) = ([args for on, op, args in pair.requests if on is point_path]
                               for point_path in (True, False))
        assert lane.get("columns") == lane_columns
        assert general.get("columns") in (None, ["v"], ["i", "l"])
