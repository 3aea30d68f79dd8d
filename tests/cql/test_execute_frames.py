"""execute_frames.py, the one-pass EXECUTE decoder, against the general one (`decode_request`):
on the frames cassandra-driver encodes (every query-parameter flag it takes, v4 and v5) it must
decode exactly the same Execute; on damaged and random bodies it may only step aside (None),
never return something the general decoder would not; and a Connection that uses it serves
the same events for the same traffic, whatever the cuts between the reads."""
from __future__ import annotations

import struct

import pytest
from cassandra import ConsistencyLevel
from cassandra.protocol import ExecuteMessage, OptionsMessage, ProtocolHandler, StartupMessage
from hypothesis import HealthCheck, given, settings, strategies as st

import ring.cql.connection as connection_module
from ring.cql.connection import Connection
from ring.cql.execute_frames import decode_execute, next_execute
from ring.cql.notation import ProtocolException
from ring.cql.requests import Execute, decode_request
from ring.cql.responses import Ready
from tests.cql.driver import request_bytes

QID, MID = b"0123456789abcdef", b"fedcba9876543210"


def execute_frame(version: int, values, stream: int = 7, **kw) -> bytes:
    msg = ExecuteMessage(QID, values, kw.pop("consistency", ConsistencyLevel.QUORUM),
                         result_metadata_id=MID if version >= 5 else None, **kw)
    return ProtocolHandler.encode_message(msg, stream, version, None, False)


def general(body: bytes, version: int, stream: int = 7):
    try:
        return decode_request(0x0A, body, version, stream=stream, tracing=False, custom_payload=None)
    except ProtocolException:
        return "error"


CASES = [
    ([struct.pack(">i", 5)], {}),
    ([struct.pack(">i", 5), b"x" * 100], {"timestamp": 1795274658022548, "fetch_size": 5000}),
    ([], {}),
    ([None, b"", struct.pack(">q", -1)], {"serial_consistency_level": ConsistencyLevel.LOCAL_SERIAL}),
    ([b"a"], {"paging_state": b"\x01\x02\x03", "fetch_size": 2, "skip_meta": True}),
    ([b"a"], {"consistency": ConsistencyLevel.LOCAL_ONE, "timestamp": 3}),
]


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("values,kw", CASES)
def test_same_execute_as_the_general_decoder(version, values, kw):
    frame = execute_frame(version, values, **kw)
    found = next_execute(frame, version, 1 << 20)
    assert found is not None and found[1] == len(frame)
    expected = general(frame[9:], version)
    assert isinstance(expected, Execute) and found[0] == expected
    assert next_execute(frame[:-1], version, 1 << 20) is None                 # not whole yet
    assert next_execute(frame, 5 if version == 4 else 4, 1 << 20) is None    # another version
    assert next_execute(frame, version, len(frame) - 10) is None             # over the frame limit


def test_steps_aside_for_what_it_does_not_take():
    frame = bytearray(execute_frame(4, [b"a"]))
    frame[1] |= 0x01                               # compressed: the general path decides
    assert next_execute(frame, 4, 1 << 20) is None
    query = ProtocolHandler.encode_message(OptionsMessage(), 1, 4, None, False)
    assert next_execute(query, 4, 1 << 20) is None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([4, 5]), st.integers(0, len(CASES) - 1), st.integers(0, 10_000), st.integers(0, 7),
       st.integers(0, 40), st.binary(max_size=6))
def test_damaged_bodies_never_decode_differently(version, case, position, bit, cut, junk):
    values, kw = CASES[case]
    body = bytearray(execute_frame(version, values, **dict(kw))[9:])
    body[position % len(body)] ^= 1 << bit
    body = bytes(body[:len(body) - cut % (len(body) + 1)]) + junk
    fast = decode_execute(body, version, 7, False)
    if fast is not None:
        assert fast == general(body, version)


@settings(max_examples=300)
@given(st.sampled_from([4, 5]), st.binary(max_size=80))
def test_random_bodies_never_decode_differently(version, body):
    fast = decode_execute(body, version, 7, False)
    if fast is not None:
        assert fast == general(body, version)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 200), max_size=8))
def test_a_connection_serves_the_same_events_at_any_cut(cuts):
    traffic = b"".join(execute_frame(4, [struct.pack(">i", i), b"v" * i], stream=i, timestamp=i)
                       for i in range(12))
    traffic += ProtocolHandler.encode_message(OptionsMessage(), 99, 4, None, False)
    conn = Connection()
    conn.receive_data(request_bytes(StartupMessage(cqlversion="3.4.5", options={}), 0, 4))
    conn.send(Ready(), 0)
    served = []                                    # the EXECUTEs the one-pass decoder served

    def counting(buf, version, max_body, fields, pos, lz4=False):
        found = next_execute(buf, version, max_body, fields, pos, lz4)
        if found is not None:
            served.append(found[0].stream)
        return found
    connection_module.next_execute = counting
    try:
        events, pos = conn.receive_data(b""), 0
        for c in cuts + [len(traffic)]:
            events += conn.receive_data(traffic[pos:pos + c])
            pos += c
        events += conn.receive_data(traffic[pos:])
    finally:
        connection_module.next_execute = next_execute
    assert served == list(range(12))
    assert [e.stream for e in events] == list(range(12)) + [99]
    for i, e in enumerate(events[:12]):
        assert e == general(traffic_frame_body(i), 4, stream=i)


def traffic_frame_body(i: int) -> bytes:
    return execute_frame(4, [struct.pack(">i", i), b"v" * i], stream=i, timestamp=i)[9:]


@pytest.mark.parametrize("version", [4, 5])
def test_skip_metadata_flag(version):
    body = bytearray(execute_frame(version, [b"a"], fetch_size=3)[9:])
    at = 2 + len(QID) + (2 + len(MID) if version >= 5 else 0) + 2 + (3 if version >= 5 else 0)
    body[at] |= 0x02                               # skip_metadata, set by hand (the driver sets it itself)
    fast = decode_execute(bytes(body), version, 7, False)
    assert fast.parameters.skip_metadata and fast == general(bytes(body), version)


@pytest.mark.parametrize("values,kw", CASES)
def test_a_compressed_v4_frame_on_an_lz4_connection(values, kw):
    """v4 + lz4 (cassandra-driver's compression): the inflated body decodes to the general
    decoder's Execute; without `lz4` (no compression negotiated) or with a body that does not
    inflate, the one-pass decoder steps aside."""
    from cassandra.connection import lz4_compress
    frame = execute_frame(4, values, **kw)
    packed = ProtocolHandler.encode_message(ExecuteMessage(QID, values, kw.pop("consistency", ConsistencyLevel.QUORUM),
                                                           **kw), 7, 4, lz4_compress, False)
    assert packed[1] == 0x01 and packed != frame
    found = next_execute(packed, 4, 1 << 20, lz4=True)
    assert found is not None and found[1] == len(packed) and found[0] == general(frame[9:], 4)
    marker, _ = next_execute(packed, 4, 1 << 20, fields=True, lz4=True)
    assert type(marker) is tuple and marker[1] == 7                      # the lane's (fields, stream)
    assert next_execute(packed, 4, 1 << 20) is None                       # not negotiated
    broken = bytearray(packed)
    broken[9:13] = (1 << 30).to_bytes(4, "big")                           # claims 1 GiB inflated
    assert next_execute(bytes(broken), 4, 1 << 20, lz4=True) is None
    traced = bytearray(packed)
    traced[1] |= 0x02                                                     # compression and tracing
    assert next_execute(bytes(traced), 4, 1 << 20, lz4=True) is None


@pytest.mark.parametrize("tail", ["options", "half", "none"])
def test_one_read_gives_every_whole_frame_at_once(tail):
    """A read of EXECUTEs and then another request gives all of them from that one call (nothing
    whole waits for the next read); a half frame at the end stays buffered for the next one."""
    traffic = b"".join(execute_frame(4, [struct.pack(">i", i)], stream=i) for i in range(3))
    options = ProtocolHandler.encode_message(OptionsMessage(), 99, 4, None, False)
    extra = {"options": options, "half": options[:5], "none": b""}[tail]
    conn = Connection()
    conn.receive_data(request_bytes(StartupMessage(cqlversion="3.4.5", options={}), 0, 4))
    conn.send(Ready(), 0)
    events = conn.receive_data(b"") + conn.receive_data(traffic + extra)
    assert [e.stream for e in events] == [0, 1, 2] + ([99] if tail == "options" else [])
    assert [e.stream for e in conn.receive_data(options[5:] if tail == "half" else b"")] == (
        [99] if tail == "half" else [])
