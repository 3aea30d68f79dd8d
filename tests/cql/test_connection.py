"""The sans-IO Connection driven with cassandra-driver's own request bytes."""
import pytest
from cassandra.protocol import (
    AuthResponseMessage, OptionsMessage, ProtocolException as DriverProtocolException, QueryMessage,
    ReadyMessage, RegisterMessage, StartupMessage, SupportedMessage,
)
from hypothesis import HealthCheck, given, settings, strategies as st

from ring.cql.connection import Connection, Phase, Rejected
from ring.cql.frame import encode_frame
from ring.cql.requests import AuthResponse, Options, Query, Register, Startup
from ring.cql.responses import Authenticate, AuthSuccess, Error, ErrorCode, Ready
from ring.cql.result import ColumnSpec, Rows, RowsMetadata, Void
from ring.cql.types import parse_type
from tests.cql.driver import decode_one, decode_responses, request_bytes

STARTUP = StartupMessage("3.4.5", {"DRIVER_NAME": "test"})
LZ4_STARTUP = StartupMessage("3.4.5", {"COMPRESSION": "lz4"})


def handshake(version, compressed=False, conn=None):
    conn = conn or Connection()
    events = conn.receive_data(request_bytes(OptionsMessage(), 0, version)
                               + request_bytes(LZ4_STARTUP if compressed else STARTUP, 1, version))
    assert [type(e) for e in events] == [Options, Startup]
    assert isinstance(decode_one(conn.send(conn.supported(), 0)), SupportedMessage)
    assert isinstance(decode_one(conn.send(Ready(), 1)), ReadyMessage)
    assert conn.phase is Phase.READY and conn.uses_segments == (version >= 5)
    return conn


def query(conn, version, compressed, *streams):
    data = b"".join(request_bytes(QueryMessage(f"SELECT {s}", 1, fetch_size=5000, timestamp=s), s, version,
                                  compressed=compressed, segments=version >= 5) for s in streams)
    return conn.receive_data(data)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("compressed", [False, True])
def test_pipelined_queries_answered_out_of_order(version, compressed):
    conn = handshake(version, compressed)
    events = query(conn, version, compressed, 5, 960, 64, 32767)
    assert [(e.stream, e.query) for e in events] == [(5, "SELECT 5"), (960, "SELECT 960"), (64, "SELECT 64"),
                                                     (32767, "SELECT 32767")]
    meta = RowsMetadata((ColumnSpec("system", "local", "release_version", parse_type("text")),))
    out = b"".join(conn.send(Rows.from_values(meta, [["x" * 2000 + str(e.stream)]]), e.stream)
                   for e in reversed(events))
    decoded = decode_responses(out, compressed=compressed, segments=version >= 5)
    assert [h.stream for h, _ in decoded] == [32767, 64, 960, 5]
    assert all(m.parsed_rows[0][0].endswith(str(h.stream)) for h, m in decoded)
    assert all(bool(h.flags & 1) == (compressed and version == 4) for h, _ in decoded)


@pytest.mark.parametrize("version", [4, 5])
def test_byte_at_a_time_is_need_more_data_then_the_request(version):
    conn = handshake(version)
    data = request_bytes(QueryMessage("SELECT 1", 1), 9, version, segments=version >= 5)
    for b in data[:-1]:
        assert conn.receive_data(bytes([b])) == []
    (event,) = conn.receive_data(data[-1:])
    assert isinstance(event, Query) and event.stream == 9


def test_large_v5_frame_spans_segments_both_ways():
    conn = handshake(5, compressed=True)
    (event,) = conn.receive_data(request_bytes(QueryMessage("SELECT '" + "y" * 300_000 + "'", 1), 3, 5,
                                               compressed=True, segments=True))
    assert len(event.query) == 300_009
    meta = RowsMetadata((ColumnSpec("k", "t", "v", parse_type("blob")),))
    out = conn.send(Rows.from_values(meta, [[bytes(range(256)) * 1200]]), 3)
    assert decode_one(out, compressed=True, segments=True).parsed_rows[0][0] == bytes(range(256)) * 1200


@pytest.mark.parametrize("sent, reply_version", [(0x42, 5), (0x41, 5), (6, 5), (3, 3), (0x7F, 5)])
def test_unsupported_version_says_so_in_a_frame_the_driver_reads(sent, reply_version):
    conn = Connection()
    frame = request_bytes(OptionsMessage(), 7, 4)
    (event,) = conn.receive_data(bytes([sent]) + frame[1:])
    assert isinstance(event, Rejected) and event.close and event.stream == 7 and conn.closed
    reply = conn.send(event.error, event.stream)
    assert reply[0] == 0x80 | reply_version
    error = decode_one(reply)
    assert isinstance(error, DriverProtocolException) and "unsupported protocol version" in error.message
    assert conn.receive_data(request_bytes(OptionsMessage(), 1, 4)) == []


def test_v1_client_gets_a_v1_header():
    conn = Connection()
    (event,) = conn.receive_data(bytes([1, 0, 3, 5, 0, 0, 0, 0]))
    reply = conn.send(event.error, event.stream)
    assert reply[:3] == bytes([0x81, 0, 3]) and reply[3] == 0 and "unsupported protocol version" in reply.decode("latin1")


def test_driver_only_v4_server_steps_down():
    conn = Connection(versions=(4,))
    (event,) = conn.receive_data(request_bytes(OptionsMessage(), 0, 5))
    assert "supported versions are (4/v4)" in event.error.message


def test_version_change_mid_connection_is_fatal():
    conn = handshake(4)
    (event,) = conn.receive_data(request_bytes(OptionsMessage(), 2, 3))
    assert isinstance(event, Rejected) and event.close and "previous messages" in event.error.message


def test_phase_rules():
    conn = Connection()
    (event,) = conn.receive_data(request_bytes(QueryMessage("SELECT 1", 1), 4, 4))
    assert isinstance(event, Rejected) and not event.close and "expecting STARTUP or OPTIONS" in event.error.message
    (event,) = conn.receive_data(request_bytes(StartupMessage("3.4.5", {"COMPRESSION": "snappy"}), 5, 4))
    assert "Unknown compression algorithm: snappy" in event.error.message
    (event,) = conn.receive_data(request_bytes(StartupMessage("2.0.0", {}), 5, 4))
    assert "Unsupported CQL version" in event.error.message
    handshake(4, conn=conn)
    (event,) = conn.receive_data(request_bytes(STARTUP, 6, 4))
    assert "already initialized" in event.error.message
    (event,) = conn.receive_data(request_bytes(RegisterMessage(["SCHEMA_CHANGE"]), 7, 4))
    assert isinstance(event, Register) and conn.registered == {"SCHEMA_CHANGE"}


def test_input_after_startup_waits_for_the_reply_then_comes_as_segments():
    conn = Connection()
    data = request_bytes(STARTUP, 1, 5) + request_bytes(QueryMessage("SELECT 1", 1), 2, 5, segments=True)
    assert [type(e) for e in conn.receive_data(data)] == [Startup]
    assert conn.receive_data(b"") == []
    conn.send(Ready(), 1)
    (event,) = conn.receive_data(b"")
    assert isinstance(event, Query) and event.stream == 2


def test_startup_error_leaves_the_connection_uninitialized():
    conn = Connection()
    conn.receive_data(request_bytes(LZ4_STARTUP, 1, 4))
    conn.send(Error(ErrorCode.SERVER_ERROR, "not now"), 1)
    assert conn.phase is Phase.UNINITIALIZED and conn.compression is None
    handshake(4, conn=conn)


def test_authentication_flow():
    conn = Connection()
    conn.receive_data(request_bytes(STARTUP, 1, 5))
    conn.send(Authenticate("org.apache.cassandra.auth.PasswordAuthenticator"), 1)
    assert conn.phase is Phase.AUTHENTICATING and conn.uses_segments
    (event,) = conn.receive_data(request_bytes(QueryMessage("SELECT 1", 1), 2, 5, segments=True))
    assert "expecting AUTH_RESPONSE" in event.error.message
    (event,) = conn.receive_data(request_bytes(AuthResponseMessage(b"\0u\0p"), 3, 5, segments=True))
    assert isinstance(event, AuthResponse) and event.token == b"\0u\0p"
    conn.send(AuthSuccess(), 3)
    assert conn.phase is Phase.READY


def test_oversized_frame_is_rejected_skipped_and_the_connection_serves_on():
    conn = Connection(max_frame_bytes=1000)
    handshake(4, conn=conn)
    big = request_bytes(QueryMessage("SELECT '" + "z" * 5000 + "'", 1), 11, 4)
    events = conn.receive_data(big[:3000])
    assert len(events) == 1 and not events[0].close and events[0].stream == 11
    assert "Request is too big: length 5" in events[0].error.message
    (event,) = conn.receive_data(big[3000:] + request_bytes(QueryMessage("SELECT 2", 1), 12, 4))
    assert isinstance(event, Query) and event.query == "SELECT 2"


def test_compressed_flag_without_negotiation_and_bad_lz4_are_rejected():
    conn = handshake(4)
    (event,) = conn.receive_data(encode_frame(4, 0x01, 3, 0x05, b"\x00\x00\x00\x05abc", response=False))
    assert "no compressor configured" in event.error.message and not event.close
    conn = handshake(4, compressed=True)
    (event,) = conn.receive_data(encode_frame(4, 0x01, 3, 0x07, b"\x00\x00\x10\x00\xff\xff", response=False))
    assert "lz4" in event.error.message
    (event,) = conn.receive_data(encode_frame(4, 0x01, 3, 0x07, b"\x7f\x00\x00\x00junk", response=False))
    assert "above the limit" in event.error.message


def test_response_frame_and_negative_length_are_fatal():
    conn = handshake(4)
    (event,) = conn.receive_data(b"\x84\x00\x00\x01\x05\x00\x00\x00\x00")
    assert event.close and "response frame" in event.error.message
    conn = handshake(4)
    (event,) = conn.receive_data(b"\x04\x00\x00\x01\x05\xff\xff\xff\xff")
    assert event.close and "negative body length" in event.error.message


def test_warnings_and_tracing_reach_the_driver():
    conn = handshake(4)
    out = conn.send(Void(), 4, tracing_id=b"\x01" * 16, warnings=["Aggregation query used without partition key"])
    msg = decode_one(out)
    assert msg.warnings == ["Aggregation query used without partition key"] and msg.trace_id.bytes == b"\x01" * 16


# -- hypothesis: garbage never escapes as an exception, never hangs ----------------------

def drive(conn, chunks):
    for chunk in chunks:
        for event in conn.receive_data(chunk):
            if isinstance(event, Rejected):
                reply = conn.send(event.error, event.stream)
                decoded = decode_one(reply, segments=conn.uses_segments, compressed=conn.compression is not None)
                assert isinstance(decoded, DriverProtocolException)
            elif isinstance(event, Startup):
                conn.send(Ready(), event.stream)
                conn.receive_data(b"")
    return conn


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0] + points, points + [len(data)])]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=5), st.sampled_from([4, 5]))
def test_random_bytes_yield_errors_or_need_more_data(garbage, cuts, version):
    conn = Connection(max_frame_bytes=4096)
    drive(conn, chunked(garbage, cuts))
    conn = handshake(version, compressed=version == 5)
    drive(conn, chunked(garbage, cuts))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([4, 5]), st.booleans(), st.integers(0, 10_000), st.integers(0, 255), st.integers(0, 7))
def test_truncated_or_flipped_valid_traffic(version, compressed, cut, position, bit):
    valid = b"".join(request_bytes(m, i, version, compressed=compressed, segments=version >= 5) for i, m in enumerate(
        [QueryMessage("SELECT * FROM t", 4, fetch_size=100, timestamp=7), RegisterMessage(["STATUS_CHANGE"]),
         OptionsMessage()]))
    conn = handshake(version, compressed)
    damaged = bytearray(valid[:cut % (len(valid) + 1)])
    if damaged:
        damaged[position % len(damaged)] ^= 1 << bit
    drive(conn, [bytes(damaged)])
    if not damaged or cut % (len(valid) + 1) == 0:
        assert conn.phase is Phase.READY
