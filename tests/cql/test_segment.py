"""v5 segments against cassandra-driver's SegmentCodec: byte-identical output, both directions."""
import io

import pytest
from cassandra.connection import segment_codec_lz4, segment_codec_no_compression
from cassandra.segment import compute_crc24
from hypothesis import given, strategies as st

from ring.cql.notation import ProtocolException
from ring.cql.segment import PAYLOAD_BYTES_MAX, Segment, SegmentDecoder, crc24, encode_frames, encode_segments

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
    assert decoder.feed(bytes(wire)) == [Segment(b"x" * 20, True)]     # the good one first
    with pytest.raises(ProtocolException) as e:
        decoder.feed(b"")
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


def _driver_segments(wire: bytes, compressed: bool) -> list:
    """The driver's decoding of `wire`: [(payload, self_contained)]."""
    codec, buf, out = CODECS[compressed], io.BytesIO(wire), []
    while buf.tell() < len(wire):
        header = codec.decode_header(buf)
        out.append((codec.decode(buf, header).payload, header.is_self_contained))
    return out


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("sizes", [[30] * 64, [1], [PAYLOAD_BYTES_MAX // 2] * 3, [10, PAYLOAD_BYTES_MAX + 5, 10],
                                   [PAYLOAD_BYTES_MAX, 1], [5, PAYLOAD_BYTES_MAX - 5, 1]])
def test_encode_frames_packs_whole_frames_and_splits_only_a_frame_too_long(compressed, sizes):
    """A flush's frames share self-contained segments up to the payload limit (64 small ones: one
    segment); a frame over the limit goes alone in segments that are not self-contained; the
    driver's codec reads every segment and the frames come back in order."""
    frames = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    wire = encode_frames(frames, compressed)
    got = _driver_segments(wire, compressed)
    assert b"".join(p for p, _ in got) == b"".join(frames)
    assert all(len(p) <= PAYLOAD_BYTES_MAX for p, _ in got)
    expected, run = [], 0                  # the segments a greedy packing makes, by their payload sizes
    for n in sizes:
        if n > PAYLOAD_BYTES_MAX:
            if run:
                expected.append((run, True))
                run = 0
            expected += [(min(PAYLOAD_BYTES_MAX, n - i), False) for i in range(0, n, PAYLOAD_BYTES_MAX)]
            continue
        if run + n > PAYLOAD_BYTES_MAX:
            expected.append((run, True))
            run = 0
        run += n
    expected += [(run, True)] if run else []
    assert [(len(p), sc) for p, sc in got] == expected
    assert len(got) == 1 or sum(sizes) > PAYLOAD_BYTES_MAX
    assert SegmentDecoder(compressed).feed(wire) == [Segment(p, sc) for p, sc in got]


def test_a_remembered_crc24_is_the_computed_one():
    import ring.cql.segment as segment
    segment._CRC24_SEEN.clear()
    first = [crc24(v, n) for v in (0, 1, 0x1FFFF, 2**35 - 1) for n in (3, 5)]
    assert len(segment._CRC24_SEEN) == 8
    assert [crc24(v, n) for v in (0, 1, 0x1FFFF, 2**35 - 1) for n in (3, 5)] == first
    assert first == [compute_crc24(v, n) for v in (0, 1, 0x1FFFF, 2**35 - 1) for n in (3, 5)]


@pytest.mark.parametrize("compressed", [False, True])
def test_good_segments_before_a_corrupt_one_are_returned_then_the_failure_raised(compressed):
    """Review s10-rev_cql: the segments before a CRC mismatch in the same bytes are not lost."""
    good, bad = encode_segments(b"a" * 40, compressed), bytearray(encode_segments(b"b" * 40, compressed))
    bad[-1] ^= 0xFF                                     # payload CRC32 wrong
    decoder = SegmentDecoder(compressed)
    assert decoder.feed(good + bytes(bad)) == [Segment(b"a" * 40, True)]
    assert decoder.failure is not None and decoder.failure.fatal
    with pytest.raises(ProtocolException, match="CRC32"):
        decoder.feed(b"")
    with pytest.raises(ProtocolException, match="CRC32"):
        SegmentDecoder(compressed).feed(bytes(bad))      # first in the bytes: raised at once
