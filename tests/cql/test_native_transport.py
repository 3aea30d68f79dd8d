"""ring/runtime/native_transport.py on a real node process and real sockets: pipelined requests on
one connection are each answered once on their stream, and a client that sends but never reads
is paused (the node stops reading it once its answers back up) while other clients are served."""
from __future__ import annotations

import socket
import time

import pytest
from cassandra import ConsistencyLevel
from cassandra.protocol import QueryMessage, StartupMessage

from tests.cql.driver import decode_responses, request_bytes
from tests.cql.one_node import one_node

BLOB = 64 * 1024
FLOOD_FRAMES_MAX = 1000          # ~60 MB of requests, ~64 MB of answers: far past any socket buffer


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with one_node(tmp_path_factory, "cqltransport", {}, "CREATE TABLE ks.big (k int PRIMARY KEY, v blob)") as n:
        (_, session) = n
        session.execute("INSERT INTO ks.big (k, v) VALUES (1, %s)", [b"x" * BLOB])
        yield n


def raw_connection(address) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.connect(address)
    s.sendall(request_bytes(StartupMessage(cqlversion="3.4.5", options={}), 0, 4))
    s.settimeout(10)
    assert s.recv(9)[4] == 0x02                      # READY
    return s


def read_frames(s: socket.socket, n: int) -> list:
    data, got = b"", []
    while len(got) < n:
        chunk = s.recv(1 << 20)
        assert chunk, "connection closed"
        data += chunk
        while len(data) >= 9 and len(data) >= 9 + int.from_bytes(data[5:9], "big"):
            end = 9 + int.from_bytes(data[5:9], "big")
            got += decode_responses(data[:end])
            data = data[end:]
    return got


def test_pipelined_requests_are_each_answered_once_on_their_stream(node):
    address, _ = node
    s = raw_connection(address)
    streams = list(range(1, 300, 3)) + [32767, 5000]
    s.sendall(b"".join(request_bytes(QueryMessage(f"SELECT k FROM ks.big WHERE k = {i % 3}", ConsistencyLevel.ONE),
                                     i, 4) for i in streams))
    got = read_frames(s, len(streams))
    assert sorted(h.stream for h, _ in got) == sorted(streams)
    assert all(len(msg.parsed_rows) == (i % 3 == 1) for i in streams for h, msg in got if h.stream == i)
    s.close()


def test_a_client_that_does_not_read_is_paused_and_others_are_served(node):
    address, session = node
    flood = raw_connection(address)
    flood.setblocking(False)
    query = "SELECT v FROM ks.big WHERE k = 1 /*" + "p" * 60_000 + "*/"
    frame = request_bytes(QueryMessage(query, ConsistencyLevel.ONE), 1, 4)
    pending, frames, last_progress = b"", 0, time.monotonic()
    while frames < FLOOD_FRAMES_MAX and time.monotonic() - last_progress < 2.0:
        if not pending:
            pending, frames = frame, frames + 1
        try:
            sent = flood.send(pending)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        pending, last_progress = pending[sent:], time.monotonic()
    assert frames < FLOOD_FRAMES_MAX, "the node read every request of a client that never reads its answers"
    assert session.execute("SELECT k FROM ks.big WHERE k = 1").one().k == 1     # others are served meanwhile
    flood.close()
    assert session.execute("SELECT k FROM ks.big WHERE k = 1").one().k == 1
