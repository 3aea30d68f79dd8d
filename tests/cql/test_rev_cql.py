"""Review reproducers for s10-cql_par (v4+lz4 lane, v5 shared segments)."""
from __future__ import annotations

import pytest
from cassandra import ConsistencyLevel
from cassandra.protocol import ErrorMessage, ExecuteMessage

from ring.cql.segment import SegmentDecoder
from tests.cql.driver import decode_responses
from tests.cql.test_point import I32, Pair, cql  # noqa: F401


def run(pair, conn, out):
    return [(req.id, pair.cql.sim.wait(pair.cql.sim.submit("n1", req.op, **req.args))) for req in out.requests]


def test_v4_lz4_corrupt_body_between_lane_executes(cql):  # noqa: F811
    pair = Pair(cql, 4, True)
    ins = pair.prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    mk = lambda k: pair.frame(ExecuteMessage(ins.query_id, [I32.pack(k), b"v"], ConsistencyLevel.QUORUM))
    a, b, c = mk(1), bytearray(mk(2)), mk(3)
    b[13:] = b"\xff" * (len(b) - 13)            # keeps the 4-byte size, garbles the lz4 block
    lane = pair.conns[0]
    out = lane.receive_data(a + bytes(b) + c)
    assert len(out.requests) == 2
    (h, msg), = decode_responses(out.data, compressed=True)
    assert isinstance(msg, ErrorMessage) and msg.code == 0x000A and h.stream == pair.stream - 1, (h, msg)
    assert not lane.connection.closed
    frames = [lane.point_frame(rid, r.result, r.error) for rid, r in run(pair, lane, out)]
    got = decode_responses(lane.connection.seal(frames), compressed=True)
    assert [h.stream for h, _ in got] == [pair.stream - 2, pair.stream] and all(h.flags & 1 for h, _ in got)


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_big_and_small_lane_answers_in_one_flush(cql, compressed):  # noqa: F811
    pair = Pair(cql, 5, compressed)
    ins = pair.prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    sel = pair.prepare("SELECT * FROM ks.kv WHERE k = ?")
    import os
    big = os.urandom(300_000)
    pair.execute(ins, [I32.pack(900), big])
    pair.execute(ins, [I32.pack(901), b"s"])
    frames = []
    for k in (901, 900, 901, 900) + (901,) * 2000:
        frames.append(pair.frame(ExecuteMessage(sel.query_id, [I32.pack(k)], ConsistencyLevel.QUORUM,
                                                result_metadata_id=sel.result_metadata_id)))
    lane = pair.conns[0]
    out = lane.receive_data(b"".join(frames))
    assert len(out.requests) == len(frames)
    sealed = lane.connection.seal([lane.point_frame(rid, r.result, r.error) for rid, r in run(pair, lane, out)])
    segs = SegmentDecoder(compressed).feed(sealed)
    assert all(len(s.payload) <= 128 * 1024 - 1 for s in segs)
    got = decode_responses(sealed, compressed=compressed, segments=True, result_metadata=sel.column_metadata)
    assert [m.parsed_rows[0][1] for _, m in got[:4]] == [b"s", big, b"s", big]
    assert len(got) == len(frames)


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_incoming_frame_split_across_segments_takes_the_lane(cql, compressed):  # noqa: F811
    import os
    pair = Pair(cql, 5, compressed)
    ins = pair.prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    sel = pair.prepare("SELECT v FROM ks.kv WHERE k = ?")
    big = os.urandom(400_000)
    wire = pair.frame(ExecuteMessage(ins.query_id, [I32.pack(77), big], ConsistencyLevel.QUORUM,
                                     result_metadata_id=ins.result_metadata_id))
    segs = SegmentDecoder(compressed).feed(wire)
    assert len(segs) > 1 and not any(s.self_contained for s in segs)
    lane = pair.conns[0]
    out = b""
    for i in range(0, len(wire), 7777):                       # arbitrary cuts
        o = lane.receive_data(wire[i:i + 7777])
        out, reqs = out + o.data, o.requests
        if reqs:
            frames = [lane.point_frame(rid, r.result, r.error) for rid, r in run(pair, lane, o)]
    assert len(lane.points) == 0 and frames
    (_, msg), = decode_responses(lane.connection.seal(frames), compressed=compressed, segments=True)
    assert msg.kind == 1
    assert pair.rows(sel, [I32.pack(77)]).parsed_rows == [(big,)]


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_good_segments_before_a_corrupt_one_in_the_same_read_are_served(cql, compressed):  # noqa: F811
    pair = Pair(cql, 5, compressed)
    ins = pair.prepare("INSERT INTO ks.kv (k, v) VALUES (?, ?)")
    mk = lambda k: pair.frame(ExecuteMessage(ins.query_id, [I32.pack(k), b"v"], ConsistencyLevel.QUORUM,
                                             result_metadata_id=ins.result_metadata_id))
    good, bad = mk(1), bytearray(mk(2))
    bad[-1] ^= 0xFF                                   # payload CRC32 wrong
    lane = pair.conns[0]
    out = lane.receive_data(good + bytes(bad))
    assert out.close                                  # fatal, as in Cassandra
    assert len(out.requests) == 1, "the request in the good segment before the corrupt one is dropped"
