"""Frames, the handshake and the wire examples of docs/format.md (wire)."""
from __future__ import annotations

import pathlib
import re
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ring.errors import ConfigurationError, ProtocolError
from ring.messages import ClientRequest, decode, encode, packb
from ring.runtime import frames
from ring.runtime.frames import (AuthenticationError, ConnectorHandshake, FrameDecoder, ServerHandshake,
                                 encode_frame)

WIRE_MD = pathlib.Path(__file__).resolve().parents[2] / "docs" / "format.md"


def doc_hex(marker: str) -> bytes:
    text = WIRE_MD.read_text()
    m = re.search(rf"<!-- {marker} -->\s*```\n(.*?)```", text, re.S)
    assert m, f"{marker} block missing from {WIRE_MD}"
    return bytes.fromhex(m.group(1).replace("\n", " "))


def decode_all(data: bytes, max_frame_bytes: int = frames.MAX_FRAME_BYTES) -> list[bytes]:
    d = FrameDecoder(max_frame_bytes)
    d.feed(data)
    out = []
    while (p := d.next_payload()) is not None:
        out.append(p)
    return out


# -- the documented examples --------------------------------------------------------------------

def test_frame_example_matches_doc():
    payload = encode(ClientRequest(7, "get", {"keyspace": "ks"}))
    frame = encode_frame(payload)
    assert frame == doc_hex("frame-example")
    assert frame[:2] == b"DT" and frame[2] == 1 and frame[3] == 0
    assert int.from_bytes(frame[4:8], "big") == len(payload) == 20
    assert int.from_bytes(frame[-4:], "big") == zlib.crc32(payload)
    assert decode(decode_all(frame)[0]) == ClientRequest(7, "get", {"keyspace": "ks"})


def test_hello_example_matches_doc():
    assert frames.hello("client", "", "dynatable") == doc_hex("hello-example")


# -- round trips and feeding --------------------------------------------------------------------

def test_round_trip_several_frames_in_one_feed():
    payloads = [b"", b"x", b"\x00" * 1000, encode(ClientRequest(1, "insert", {"row": {"id": 1}}))]
    assert decode_all(b"".join(encode_frame(p) for p in payloads)) == payloads


def test_byte_at_a_time():
    data = encode_frame(b"hello") + encode_frame(b"world")
    d, out = FrameDecoder(), []
    for i in range(len(data)):
        d.feed(data[i:i + 1])
        while (p := d.next_payload()) is not None:
            out.append(p)
    assert out == [b"hello", b"world"] and d.buffered_bytes == 0


def test_incomplete_frame_waits():
    d = FrameDecoder()
    frame = encode_frame(b"abcdef")
    d.feed(frame[:-1])
    assert d.next_payload() is None
    d.feed(frame[-1:])
    assert d.next_payload() == b"abcdef"
    assert d.next_payload() is None


def test_flags_are_ignored_on_read():
    assert decode_all(encode_frame(b"p", flags=0x80)) == [b"p"]


def test_frame_at_the_limit_is_accepted():
    assert decode_all(encode_frame(b"x" * 64), max_frame_bytes=64) == [b"x" * 64]


@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 50), min_size=1), st.data())
def test_arbitrary_chunking(payloads, cuts, data):
    stream = b"".join(encode_frame(p) for p in payloads)
    d, out, pos, i = FrameDecoder(), [], 0, 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        d.feed(stream[pos:pos + n])
        pos, i = pos + n, i + 1
        while (p := d.next_payload()) is not None:
            out.append(p)
    assert out == payloads
    assert d.buffered_bytes == 0


# -- errors ---------------------------------------------------------------------------------------

def test_bad_magic():
    with pytest.raises(ProtocolError, match="bad frame magic 4745"):
        decode_all(b"GET / HTTP/1.1\r\n")


def test_bad_magic_is_seen_after_one_byte():
    d = FrameDecoder()
    d.feed(b"X")
    with pytest.raises(ProtocolError, match="bad frame magic"):
        d.next_payload()


def test_unknown_version():
    frame = encode_frame(b"p", version=7)
    with pytest.raises(ProtocolError, match=re.escape("protocol version 7 is not supported (this node speaks 1)")):
        decode_all(frame[:3])  # refused as soon as the version byte is in


def test_oversized_frame_is_refused_from_its_header():
    header = encode_frame(b"x" * 65)[:8]
    with pytest.raises(ProtocolError, match="frame of 65 bytes exceeds max_frame_bytes=64"):
        decode_all(header, max_frame_bytes=64)


def test_crc_mismatch():
    frame = bytearray(encode_frame(b"payload"))
    frame[9] ^= 0x01
    with pytest.raises(ProtocolError, match="frame checksum mismatch"):
        decode_all(bytes(frame))


def test_decoder_stays_failed():
    d = FrameDecoder()
    d.feed(b"XX")
    with pytest.raises(ProtocolError):
        d.next_payload()
    d.feed(encode_frame(b"fine"))
    with pytest.raises(ProtocolError, match="bad frame magic"):
        d.next_payload()


@given(st.binary(min_size=1, max_size=200))
def test_garbage_never_yields_a_wrong_payload(garbage):
    d = FrameDecoder(1024)
    d.feed(garbage)
    try:
        p = d.next_payload()
    except ProtocolError:
        return
    if p is not None:  # only a well-formed frame can come out
        assert garbage.startswith(encode_frame(p))


# -- the handshake ----------------------------------------------------------------------------------

def run_handshake(connector: ConnectorHandshake, server: ServerHandshake) -> None:
    to_server = connector.start()
    while True:
        reply = server.receive(decode_all(to_server)[0])
        to_server = connector.receive(decode_all(reply)[0])
        if to_server is None:
            return


def test_handshake_without_secret():
    c = ConnectorHandshake("peer", "10.0.0.2:9100", "dynatable")
    s = ServerHandshake("10.0.0.1:9100", "dynatable")
    run_handshake(c, s)
    assert c.done and c.server_endpoint == "10.0.0.1:9100"
    assert s.done and (s.role, s.remote_endpoint) == ("peer", "10.0.0.2:9100")


def test_handshake_with_secret():
    c = ConnectorHandshake("client", "", "dynatable", secret="k")
    s = ServerHandshake("10.0.0.1:9100", "dynatable", secret="k")
    first = s.receive(decode_all(c.start())[0])
    kind, nonce = frames.decode_handshake(decode_all(first)[0], ("challenge",))
    assert len(nonce) == frames.NONCE_BYTES
    answer = c.receive(decode_all(first)[0])
    assert frames.decode_handshake(decode_all(answer)[0], ("auth",))[1] == frames.answer_challenge("k", nonce)
    c.receive(decode_all(s.receive(decode_all(answer)[0]))[0])
    assert c.done and s.done and s.role == "client"


@pytest.mark.parametrize("secret", ["", "wrong"])
def test_handshake_wrong_secret(secret):
    c = ConnectorHandshake("client", "", "dynatable", secret=secret)
    s = ServerHandshake("n1", "dynatable", secret="right")
    with pytest.raises(AuthenticationError, match="authentication failed: wrong or missing cluster_secret"):
        run_handshake(c, s)
    assert not s.done


def test_handshake_other_cluster():
    s = ServerHandshake("n1", "prod")
    with pytest.raises(ConfigurationError, match="cluster name mismatch"):
        s.receive(decode_all(ConnectorHandshake("peer", "n2", "test").start())[0])


def test_refusal_is_raised_on_the_connector():
    c = ConnectorHandshake("client", "", "dynatable")
    c.start()
    with pytest.raises(AuthenticationError, match="authentication failed"):
        c.receive(frames.refuse(AuthenticationError()))


@pytest.mark.parametrize("payload,match", [
    (packb(["hello", "peer", "n2", "dynatable", 2]), "protocol version 2 is not supported"),
    (packb(["hello", "admin", "n2", "dynatable", 1]), "unknown role 'admin'"),
    (packb(["hello", "peer", "n2"]), "malformed handshake hello"),
    (packb(["auth", b""]), "expected a handshake hello frame"),
    (packb({"hello": 1}), "not a \\[kind, ...\\] list"),
    (b"\xc1", "does not decode"),
])
def test_server_refuses_bad_hellos(payload, match):
    with pytest.raises(ProtocolError, match=match):
        ServerHandshake("n1", "dynatable").receive(payload)


def test_every_message_type_is_in_the_format_doc():
    from dataclasses import fields

    from ring.message_codec import _REGISTRY
    text = WIRE_MD.read_text()
    for type_id, cls in _REGISTRY.items():
        row = re.search(rf"^\| {type_id} \| {cls.__name__} \| (.*) \|$", text, re.M)
        assert row, f"docs/format.md has no row for message {type_id} {cls.__name__}"
        assert row.group(1).startswith(fields(cls)[0].name), (cls.__name__, row.group(1))
