"""Review reproducers on a real node: v4+lz4 lane, corrupt bodies, v5 flood backpressure."""
from __future__ import annotations

import socket
import time

import pytest
from cassandra import ConsistencyLevel
from cassandra.protocol import (
    ErrorMessage,
    ExecuteMessage,
    PrepareMessage,
    QueryMessage,
    StartupMessage,
)

from ring.cql.segment import SegmentDecoder
from tests.cql.driver import decode_responses, request_bytes
from tests.cql.one_node import one_node

BLOB = 64 * 1024
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with one_node(tmp_path_factory, "revcql", {}, "CREATE TABLE ks.big (k int PRIMARY KEY, v blob)") as n:
        (_, session) = n
        for k in range(4):
            session.execute("INSERT INTO ks.big (k, v) VALUES (%s, %s)", [k, bytes([k]) * BLOB])
        yield n


class Raw:
    def __init__(self, address, version, compressed, rcvbuf=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(address)
        self.s.settimeout(10)
        self.version, self.compressed = version, compressed
        self.wire = {"compressed": compressed, "segments": version >= 5}
        self.data = b""
        self.s.sendall(request_bytes(StartupMessage(cqlversion="3.4.5", options={"COMPRESSION": "lz4"} if compressed
                                                    else {}), 0, version))
        (_, _ready), = self.read(1, segments=False, compressed=False)

    def send(self, msg, stream):
        self.s.sendall(request_bytes(msg, stream, self.version, **self.wire))

    def read(self, n, **wire):
        wire = wire or self.wire
        got = []
        while len(got) < n:
            chunk = self.s.recv(1 << 20)
            assert chunk, ("closed", got)
            self.data += chunk
            got += self._cut(wire)
        return got

    def _cut(self, wire):
        if wire["segments"]:
            if not hasattr(self, "seg"):
                self.seg, self.frames = SegmentDecoder(wire["compressed"]), b""
            for seg in self.seg.feed(self.data):
                self.frames += seg.payload
            self.data = b""
            data = self.frames
        else:
            data = self.data
        got = []
        while len(data) >= 9 and len(data) >= 9 + int.from_bytes(data[5:9], "big"):
            end = 9 + int.from_bytes(data[5:9], "big")
            got += decode_responses(data[:end], compressed=wire["compressed"])
            data = data[end:]
        if wire["segments"]:
            self.frames = data
        else:
            self.data = data
        return got


def test_v4_lz4_corrupt_lz4_execute_on_a_real_node(node):
    address, _ = node
    r = Raw(address, 4, True)
    r.send(PrepareMessage("SELECT v FROM ks.big WHERE k = ?"), 1)
    (_, prep), = r.read(1)
    good = lambda k, st: request_bytes(ExecuteMessage(prep.query_id, [k.to_bytes(4, "big")], ConsistencyLevel.ONE),
                                       st, 4, compressed=True)
    bad = bytearray(good(1, 11))
    bad[13:] = b"\xff" * (len(bad) - 13)
    r.s.sendall(good(0, 10) + bytes(bad) + good(2, 12))
    got = {h.stream: m for h, m in r.read(3)}
    assert isinstance(got[11], ErrorMessage) and got[11].code == 0x000A, got[11]
    r.s.sendall(good(3, 13))
    (h, _), = r.read(1)
    assert h.stream == 13


@pytest.mark.parametrize("version, compressed", [(5, True), (4, True)])
def test_lane_flood_without_reading_pauses_and_others_served(node, version, compressed):
    address, _ = node
    flood = Raw(address, version, compressed, rcvbuf=64 * 1024)
    flood.send(PrepareMessage("SELECT v FROM ks.big WHERE k = ?"), 1)
    (_, prep), = flood.read(1)
    frame = lambda st: request_bytes(ExecuteMessage(prep.query_id, [(st % 4).to_bytes(4, "big")], ConsistencyLevel.ONE,
                                                    result_metadata_id=prep.result_metadata_id),
                                     st, version, **flood.wire)
    flood.s.setblocking(False)
    deadline = time.time() + 10
    payload = b"".join(frame(st) for st in range(2, 3000))
    view = memoryview(payload)
    while view and time.time() < deadline:
        try:
            n = flood.s.send(view)
            view = view[n:]
        except BlockingIOError:
            time.sleep(0.05)
    other = Raw(address, 4, False)
    other.send(QueryMessage("SELECT k FROM ks.big WHERE k = 1", ConsistencyLevel.ONE), 5)
    (h, _), = other.read(1)
    assert h.stream == 5
    # now read everything from the flooder: every answer once
    flood.s.setblocking(True)
    flood.s.settimeout(20)
    sent_streams = 3000 - 2 - 0
    got = flood.read(sent_streams if not view else 0)
    print("flood answers", len(got), "unsent", len(view))
    assert sorted(h.stream for h, _ in got) == list(range(2, 3000))
