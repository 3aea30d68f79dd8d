"""v5 segments against cassandra-driver's SegmentCodec: byte-identical output, both directions."""
import io

import pytest
from cassandra.connection import segment_codec_lz4, segment_codec_no_compression
from cassandra.segment import compute_crc24
from hypothesis import given, strategies as st

from ring.cql.notation import ProtocolException
from ring.cql.segment import PAYLOAD_BYTES_MAX, SegmentDecoder, crc24, encode_segments

CODECS = {False: segment_codec_no_compression, True: segment_codec_lz4}


@given(st.integers(0, 2**40 - 1), st.sampled_from([3, 5]))
def test_crc24_matches_driver(value, length):
    assert crc24(value, length) == compute_crc24(value, length)


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("size", [0, 1, 100, PAYLOAD_BYTES_MAX, PAYLOAD_BYTES_MAX + 1, 3 * PAYLOAD_BYTES_MAX + 7])
def test_encoding_is_byte_identical_to_driver(compressed, size):
    payload = (bytes(range(256)) * (size // 256 + 1))[:size]
    driver = io.BytesIO()
    CODECS[compressed].encode(driver, payload)
    ours = encode_segments(payload, compressed)
    assert ours == driver.getvalue()
    segments = SegmentDecoder(compressed).feed(ours)
    assert b"".join(s.payload for s in segments) == payload
    assert [s.self_contained for s in segments] == [size <= PAYLOAD_BYTES_MAX] * len(segments)


@given(st.binary(max_size=3000), st.booleans(), st.integers(1, 50))
def test_decoder_accepts_any_split(payload, compressed, chunk):
    wire = encode_segments(payload, compressed)
    decoder, got = SegmentDecoder(compressed), []
    for i in range(0, len(wire), chunk):
        got += decoder.feed(wire[i:i + chunk])
    assert b"".join(s.payload for s in got) == payload and not decoder.buffer


@pytest.mark.parametrize("where", [0, 4, 10])
def test_corruption_is_fatal_and_names_the_offset(where):
    wire = bytearray(encode_segments(b"x" * 20, False) * 2)
    wire[len(wire) // 2 + where] ^= 0x01
    decoder = SegmentDecoder(False)
    with pytest.raises(ProtocolException) as e:
        decoder.feed(bytes(wire))
    assert e.value.fatal and f"stream offset {len(wire) // 2}" in e.value.message


def test_garbage_lz4_payload_is_fatal():
    # a compressed header that claims 1000 uncompressed bytes for 5 bytes of non-lz4 payload
    body = b"\xff" * 5
    header = len(body) | (1000 << 17) | (1 << 34)
    from ring.cql.segment import crc32
    wire = header.to_bytes(5, "little") + crc24(header, 5).to_bytes(3, "little") + body + crc32(body).to_bytes(4, "little")
    with pytest.raises(ProtocolException) as e:
        SegmentDecoder(True).feed(wire)
    assert e.value.fatal
