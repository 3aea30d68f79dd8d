"""Bad input over a real socket to one real node (`LocalCluster`, n=1): random bytes, truncated
frames, wrong protocol versions, an oversized frame, huge values and a flood over the
per-connection limit. Each gets an ERROR (or a clean close where Cassandra closes), and after
each a cassandra-driver query on the same node still succeeds."""
from __future__ import annotations

import random
import socket
import struct

import pytest
from cassandra import InvalidRequest
from cassandra.protocol import ErrorMessage, OptionsMessage, QueryMessage, StartupMessage, SupportedMessage

from tests.cql.driver import decode_responses, request_bytes
from tests.cql.one_node import one_node

pytestmark = pytest.mark.slow

PER_CONNECTION = 32
MAX_FRAME = 2 * 1024 * 1024
SETTINGS = {"num_tokens": 4, "log_level": "WARNING", "max_frame_bytes": MAX_FRAME,
            "native_transport_max_requests_per_connection": PER_CONNECTION}
STARTUP = StartupMessage(cqlversion="3.4.5", options={})


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with one_node(tmp_path_factory, "badinput", SETTINGS, "CREATE TABLE ks.t (k int PRIMARY KEY, v text)") as both:
        yield both


def still_serving(session) -> None:
    session.execute("INSERT INTO ks.t (k, v) VALUES (1, 'ok')")
    assert session.execute("SELECT v FROM ks.t WHERE k = 1").one().v == "ok"


def exchange(address, data: bytes, *, until_close: bool = False, want: int = 1, timeout_s: float = 10) -> tuple:
    """Send `data` on a fresh connection; (decoded responses, whether the server closed)."""
    with socket.create_connection(address, timeout=timeout_s) as s:
        s.sendall(data)
        received, closed = b"", False
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                closed = True
                break
            received += chunk
            if not until_close and _complete_frames(received) >= want:
                break
    return [m for _, m in decode_responses(received)] if received else [], closed


def _complete_frames(data: bytes) -> int:
    n, pos = 0, 0
    while len(data) - pos >= 9:
        length = struct.unpack(">i", data[pos + 5:pos + 9])[0]
        if len(data) - pos - 9 < length:
            break
        pos += 9 + length
        n += 1
    return n


def test_random_bytes_get_a_protocol_error_or_a_close(node):
    address, session = node
    rng = random.Random(13)
    for _ in range(5):
        garbage = bytes(rng.randrange(256) for _ in range(rng.randrange(9, 400)))
        responses, closed = exchange(address, garbage, until_close=True, timeout_s=3)
        assert closed or responses
        assert all(isinstance(m, ErrorMessage) for m in responses)
        still_serving(session)
    responses, closed = exchange(address, b"\x04\x00\x00\x01\x05\xff\xff\xff\xff", until_close=True)
    assert closed and isinstance(responses[0], ErrorMessage) and responses[0].code == 0x000A  # negative length
    still_serving(session)


def test_truncated_frames_leave_the_node_serving(node):
    address, session = node
    frame = request_bytes(OptionsMessage(), 3, 4)
    query = request_bytes(QueryMessage("SELECT * FROM ks.t", 1), 4, 4)
    for cut in (1, 5, 8, len(query) - 1):
        with socket.create_connection(address, timeout=5) as s:
            s.sendall(frame + request_bytes(STARTUP, 2, 4) + query[:cut])
        still_serving(session)


@pytest.mark.parametrize("version", [1, 2, 3, 6, 0x41, 0x42, 0x7F])
def test_wrong_versions_get_the_unsupported_protocol_version_reply(node, version):
    address, session = node
    header = struct.pack(">BBhBi", version, 0, 0, 0x05, 0) if version > 2 else struct.pack(">BBbBi", version, 0, 0, 5, 0)
    with socket.create_connection(address, timeout=5) as s:
        s.sendall(header)
        data = b""
        while chunk := s.recv(65536):
            data += chunk                      # then the server closes
    assert (data[0] & 0x7F) == (version if version <= 3 else 5) and data[0] & 0x80
    assert b"Invalid or unsupported protocol version (%d); supported versions are (4/v4, 5/v5)" % version in data
    still_serving(session)


def test_an_oversized_frame_is_refused_on_its_stream_and_the_connection_serves_on(node):
    address, session = node
    big = request_bytes(QueryMessage("SELECT '" + "x" * (MAX_FRAME + 10) + "' FROM ks.t", 1), 7, 4)
    data = request_bytes(OptionsMessage(), 0, 4) + request_bytes(STARTUP, 1, 4) + big + request_bytes(OptionsMessage(), 8, 4)
    responses, closed = exchange(address, data, want=4, timeout_s=20)
    assert not closed
    error = next(m for m in responses if m.stream_id == 7)
    assert isinstance(error, ErrorMessage) and "Request is too big" in error.message
    assert isinstance(responses[-1], SupportedMessage) and responses[-1].stream_id == 8
    still_serving(session)


def test_huge_values_are_invalid_and_the_node_serves_on(node):
    _, session = node
    insert = session.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
    with pytest.raises(InvalidRequest, match="max_value_bytes|exceeds"):
        session.execute(insert, (2, "x" * (1024 * 1024 + 1)))          # over the engine's 1 MiB value limit
    session.execute(insert, (3, "y" * (512 * 1024)))                   # under it: fine
    assert len(session.execute("SELECT v FROM ks.t WHERE k = 3").one().v) == 512 * 1024
    still_serving(session)


def test_a_flood_over_max_requests_per_connection_is_answered_overloaded(node):
    address, session = node
    n = 6 * PER_CONNECTION
    flood = b"".join(request_bytes(QueryMessage(f"INSERT INTO ks.t (k, v) VALUES ({i}, 'f')", 1), i + 10, 4)
                     for i in range(n))
    responses, closed = exchange(address, request_bytes(STARTUP, 1, 4) + flood, want=n + 1, timeout_s=30)
    assert not closed and len(responses) == n + 1                      # every request got an answer
    overloaded = [m for m in responses if isinstance(m, ErrorMessage) and m.code == 0x1001]
    assert overloaded and len(overloaded) < n
    assert all("on this connection" in m.message for m in overloaded)
    still_serving(session)
