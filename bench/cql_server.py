"""The CQL server's own CPU per prepared EXECUTE, in process: no sockets, no other node.

A simulated cluster (ring/runtime/sim.py) holds the schema and answers one real `select` and one
real `insert`; their replies are then canned. A `ServerConnection` (protocol v5, lz4, as
cassandra-driver negotiates) is fed batches of 64 EXECUTE frames encoded by cassandra-driver's own
codec, each node request is answered with the canned reply, and the responses of a batch are
joined as the native transport does at its flush. Reported: CPU microseconds
(`process_time`) per statement, best and median of 7 rounds of 30 batches. What it leaves out:
asyncio streams, the node's coordinator and replicas (bench/cql.py measures the whole path).

    python -m bench.cql_server
"""
from __future__ import annotations

import io
import itertools
import statistics
import struct
import time

from cassandra import ConsistencyLevel
from cassandra.connection import lz4_compress, segment_codec_lz4
from cassandra.protocol import ExecuteMessage, PrepareMessage, ProtocolHandler, StartupMessage

from bench.harness import machine
from ring.cql.execute import CqlSession, Execution
from ring.cql.frame import decode_header
from ring.cql.notation import Consistency
from ring.cql.prepare import PreparedCache
from ring.cql.requests import QueryParameters
from ring.cql.server import NativeServer
from ring.messages import Reply
from ring.runtime.sim import Simulation

BATCH, ROUNDS, REPEATS = 64, 30, 7
VERSION = 5
VALUE = b"\xab" * 100


def segments(msg, stream: int) -> bytes:
    frame = ProtocolHandler.encode_message(msg, stream, VERSION, None, False)
    out = io.BytesIO()
    segment_codec_lz4.encode(out, frame)
    return out.getvalue()


def frames_in(data: bytes) -> list[tuple[object, bytes]]:
    buf, payload = io.BytesIO(data), b""
    while buf.tell() < len(data):
        payload += segment_codec_lz4.decode(buf, segment_codec_lz4.decode_header(buf)).payload
    out, pos = [], 0
    while pos < len(payload):
        h = decode_header(payload, pos)
        out.append((h, payload[pos + 9:pos + 9 + h.length]))
        pos += 9 + h.length
    return out


def run_cql(sim, node: str, query: str, ids) -> None:
    params = QueryParameters(Consistency.QUORUM)
    ex = Execution.query(sim.nodes[node].node, CqlSession(PreparedCache()), query, params, ids)
    pending = ex.start()
    while pending:
        got = [(req.id, sim.wait(sim.submit(node, req.op, **req.args))) for req in pending]
        pending = [r for own, reply in got for r in ex.on_reply(Reply(own, reply.result, reply.error))]
    assert ex.done and not hasattr(ex.response, "code"), ex.response


def main() -> None:
    sim = Simulation(7, node_options={"gossip_interval_ms": 200, "phi_convict_threshold": 4.0})
    sim.run_for(3000)
    ids = itertools.count(1).__next__
    run_cql(sim, "n1", "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            ids)
    run_cql(sim, "n1", "CREATE TABLE ks.kv (k int PRIMARY KEY, v blob)", ids)
    sim.run_for(3000)
    server = NativeServer(sim.nodes["n1"].node)
    conn = server.connect()
    conn.receive_data(ProtocolHandler.encode_message(StartupMessage(cqlversion="3.4.5", options={
        "COMPRESSION": "lz4"}), 1, VERSION, lz4_compress, False))
    conn.receive_data(b"")

    def prepare(query: str, stream: int):
        (_, body), = frames_in(conn.receive_data(segments(PrepareMessage(query), stream)).data)
        return ProtocolHandler.decode_message(VERSION, {}, stream, 0, 0x08, body, None, None)

    select, insert = prepare("SELECT v FROM ks.kv WHERE k = ?", 2), prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)", 3)
    canned = {}
    for prep, values in ((insert, [struct.pack(">i", 1), VALUE]), (select, [struct.pack(">i", 1)])):
        out = conn.receive_data(segments(ExecuteMessage(prep.query_id, values, ConsistencyLevel.QUORUM,
                                                        result_metadata_id=prep.result_metadata_id), 4))
        for req in out.requests:
            reply = sim.wait(sim.submit("n1", req.op, **req.args))
            canned[req.op] = (reply.result, reply.error)
            assert reply.error is None, reply.error
            conn.on_reply(Reply(req.id, reply.result, reply.error))

    def batch(prep, values) -> bytes:
        return b"".join(segments(ExecuteMessage(prep.query_id, values(i), ConsistencyLevel.QUORUM,
                                                result_metadata_id=prep.result_metadata_id), 10 + i)
                        for i in range(BATCH))

    def rounds(data: bytes, n: int) -> None:
        for _ in range(n):
            outs = [conn.receive_data(data)]
            outs += [conn.on_reply(Reply(req.id, *canned[req.op])) for req in outs[0].requests]
            assert all(not o.requests for o in outs[1:])
            b"".join(o.data for o in outs)

    print(f"machine: {machine()}")
    for name, prep, values in (("SELECT by key", select, lambda i: [struct.pack(">i", 1)]),
                               ("INSERT", insert, lambda i: [struct.pack(">i", i), VALUE])):
        data = batch(prep, values)
        rounds(data, 5)
        us = []
        for _ in range(REPEATS):
            t = time.process_time()
            rounds(data, ROUNDS)
            us.append((time.process_time() - t) / (ROUNDS * BATCH) * 1e6)
        print(f"{name}: {min(us):.1f} us per statement (best of {REPEATS}), median {statistics.median(us):.1f}")
    sim.close()


if __name__ == "__main__":
    main()
