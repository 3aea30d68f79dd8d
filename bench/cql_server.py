"""The CQL server's own CPU per prepared EXECUTE, in process: no sockets, no other node.

A simulated cluster (ring/runtime/sim.py) holds the schema and answers one real `select` and one
real `insert`; their replies are then canned. A `ServerConnection` (`--protocol`, default v5,
`--compression`, default lz4, as cassandra-driver negotiates) is fed batches of `--batch`
(default 64) EXECUTE frames per `receive_data`, encoded by cassandra-driver's own codec; each
node request is answered with the canned reply, and the responses of a batch are joined as the
native transport does at its flush (a point-lane answer through `point_frame`, the batch's
frames sealed together as the transport's flush does, one v5 segment; anything else through `on_reply`). Each statement is
timed twice in the same run: the general executor (`point_path=False`) and the point fast path
(ring/cql/point.py), and the ratio is printed. Reported: CPU microseconds (`process_time`) per
statement, best and median of 7 rounds of 30 x 64 statements. What it leaves out: the asyncio transport,
the node's coordinator and replicas (bench/cql.py measures the whole path).

The own protocol's front end is timed the same way for comparison (`own` in the output): batches
of 64 own-protocol frames of the requests the own client sends for the same row (`insert`, and the
`get` bench/cql.py reads with), through the listener's code (FrameDecoder, `ClientConnection.
_on_client_payload`, `Listener._respond` with the canned result); its connection and process are
stand-ins that collect what it submits and writes.

    python -m bench.cql_server
    python -m bench.cql_server --protocol 4 --compression none --batch 1
"""
from __future__ import annotations

import argparse
import collections
import io
import itertools
import statistics
import struct
import time
import types

from cassandra import ConsistencyLevel
from cassandra.connection import lz4_compress, lz4_decompress, segment_codec_lz4, segment_codec_no_compression
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
VALUE = b"\xab" * 100


class Codec:
    """Client frames as cassandra-driver encodes them for one protocol version and compression."""

    def __init__(self, version: int, compression: str):
        self.version, self.lz4 = version, compression == "lz4"

    def request(self, msg, stream: int, handshake: bool = False) -> bytes:
        v5 = self.version >= 5
        compressor = lz4_compress if self.lz4 and not v5 and not handshake else None
        frame = ProtocolHandler.encode_message(msg, stream, self.version, compressor, False)
        if not v5 or handshake:
            return frame
        out = io.BytesIO()
        (segment_codec_lz4 if self.lz4 else segment_codec_no_compression).encode(out, frame)
        return out.getvalue()

    def frames_in(self, data: bytes) -> list[tuple[object, bytes]]:
        if self.version >= 5:
            codec = segment_codec_lz4 if self.lz4 else segment_codec_no_compression
            buf, payload = io.BytesIO(data), b""
            while buf.tell() < len(data):
                payload += codec.decode(buf, codec.decode_header(buf)).payload
            data = payload
        out, pos = [], 0
        while pos < len(data):
            h = decode_header(data, pos)
            body = data[pos + 9:pos + 9 + h.length]
            out.append((h, lz4_decompress(body) if h.flags & 1 else body))
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


def measure(sim, codec: Codec, point_path: bool) -> dict[str, tuple[float, float]]:
    """{statement: (best, median) CPU us per statement} on a fresh NativeServer of node n1."""
    server = NativeServer(sim.nodes["n1"].node, point_path=point_path)
    conn = server.connect()
    conn.receive_data(codec.request(StartupMessage(cqlversion="3.4.5", options={
        "COMPRESSION": "lz4"} if codec.lz4 else {}), 1, handshake=True))
    conn.receive_data(b"")

    def prepare(query: str, stream: int):
        (_, body), = codec.frames_in(conn.receive_data(codec.request(PrepareMessage(query), stream)).data)
        return ProtocolHandler.decode_message(codec.version, {}, stream, 0, 0x08, body, None, None)

    select, insert = prepare("SELECT v FROM ks.kv WHERE k = ?", 2), prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)", 3)
    canned = {}
    for prep, values in ((insert, [struct.pack(">i", 1), VALUE]), (select, [struct.pack(">i", 1)])):
        out = conn.receive_data(codec.request(ExecuteMessage(prep.query_id, values, ConsistencyLevel.QUORUM,
                                                             result_metadata_id=prep.result_metadata_id), 4))
        for req in out.requests:
            reply = sim.wait(sim.submit("n1", req.op, **req.args))
            canned[req.op] = (reply.result, reply.error)
            assert reply.error is None, reply.error
            conn.on_reply(Reply(req.id, reply.result, reply.error))

    def batch(prep, values) -> bytes:
        return b"".join(codec.request(ExecuteMessage(prep.query_id, values(i), ConsistencyLevel.QUORUM,
                                                     result_metadata_id=prep.result_metadata_id), 10 + i)
                        for i in range(BATCH))

    def rounds(data: bytes, n: int) -> None:      # as the native transport's _on_reply and flush
        for _ in range(n):
            first = conn.receive_data(data)
            out, frames = [first.data], []
            for req in first.requests:
                frame = conn.point_frame(req.id, *canned[req.op])
                if frame is None:
                    more = conn.on_reply(Reply(req.id, *canned[req.op]))
                    assert not more.requests
                    out.append(more.data)
                else:
                    frames.append(frame)
            if frames:
                out.append(conn.connection.seal(frames))
            b"".join(out)

    return {name: timed(rounds, batch(prep, values))
            for name, prep, values in (("SELECT by key", select, lambda i: [struct.pack(">i", 1)]),
                                       ("INSERT", insert, lambda i: [struct.pack(">i", i), VALUE]))}


def timed(rounds, data: bytes) -> tuple[float, float]:
    """(best, median) CPU us per statement of `rounds(data, ROUNDS)`, after 5 warm-up rounds."""
    rounds(data, 5)
    us = []
    for _ in range(REPEATS):
        t = time.process_time()
        rounds(data, ROUNDS)
        us.append((time.process_time() - t) / (ROUNDS * BATCH) * 1e6)
    return min(us), statistics.median(us)


def measure_own(sim) -> dict[str, tuple[float, float]]:
    """{request: (best, median) CPU us per request} of the own protocol's listener code."""
    from ring.messages import ClientRequest, encode
    from ring.runtime.frames import FrameDecoder, encode_frame
    from ring.runtime.listener import ClientConnection, Listener

    submitted, written = [], []
    conn = types.SimpleNamespace(stats=collections.Counter(), listener=Listener, closed=False, write=written.append,
                                 process=types.SimpleNamespace(submit=lambda op, args, reply: submitted.append(
                                     (op, reply))))
    requests = {"insert": {"keyspace": "ks", "table": "kv", "consistency": "QUORUM", "row": {"k": 1, "v": VALUE},
                           "ttl": None, "timestamp": None},
                "get": {"keyspace": "ks", "table": "kv", "consistency": "QUORUM", "key": {"k": 1}, "columns": None,
                        "writetime": False}}
    canned = {}
    for op, args in requests.items():
        reply = sim.wait(sim.submit("n1", op, **args))
        assert reply.error is None, reply.error
        canned[op] = (reply.result, reply.error)
    decoder = FrameDecoder()

    def rounds(data: bytes, n: int) -> None:
        for _ in range(n):
            decoder.feed(data)
            while (payload := decoder.next_payload()) is not None:      # ClientConnection.data_received
                ClientConnection._on_client_payload(conn, payload)
            for op, reply in submitted:
                reply(*canned[op])
            submitted.clear()
            b"".join(written)                                             # ClientConnection.flush
            written.clear()

    return {op: timed(rounds, b"".join(encode_frame(encode(ClientRequest(10 + i, op, args))) for i in range(BATCH)))
            for op, args in requests.items()}


def main(argv=None) -> None:
    global BATCH, ROUNDS
    ap = argparse.ArgumentParser(prog="python -m bench.cql_server", description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", type=int, choices=(4, 5), default=5)
    ap.add_argument("--compression", choices=("none", "lz4"), default="lz4")
    ap.add_argument("--batch", type=int, default=64, help="EXECUTE frames per receive_data call (default 64)")
    args = ap.parse_args(argv)
    BATCH, ROUNDS = args.batch, ROUNDS * BATCH // args.batch      # the same statements per round
    sim = Simulation(7, node_options={"gossip_interval_ms": 200, "phi_convict_threshold": 4.0})
    sim.run_for(3000)
    ids = itertools.count(1).__next__
    run_cql(sim, "n1", "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
            ids)
    run_cql(sim, "n1", "CREATE TABLE ks.kv (k int PRIMARY KEY, v blob)", ids)
    sim.run_for(3000)
    print(f"machine: {machine()}")
    print(f"protocol v{args.protocol}, compression {args.compression}, {BATCH} frames per read; CPU us per statement, best of {REPEATS} "
          f"(median)")
    figures = {}
    for point_path in (False, True):
        figures[point_path] = measure(sim, Codec(args.protocol, args.compression), point_path)
    own = measure_own(sim)
    for name, own_op in (("SELECT by key", "get"), ("INSERT", "insert")):
        (g, gm), (p, pm), (o, om) = figures[False][name], figures[True][name], own[own_op]
        print(f"{name}: general {g:.1f} ({gm:.1f}), point {p:.1f} ({pm:.1f}): point / general {p / g:.2f}x; "
              f"own {own_op} {o:.1f} ({om:.1f}): point / own {p / o:.2f}x")
    sim.close()


if __name__ == "__main__":
    main()
