"""The reference client's own codec (cassandra-driver), used as the oracle in tests/cql.

`request_bytes` encodes a driver message exactly as the driver puts it on the wire (frame, lz4
body in v4, segments in v5); `decode_responses` splits our server's bytes and decodes each frame
with the driver's ProtocolHandler.decode_message.
"""
from __future__ import annotations

import io

from cassandra.connection import lz4_compress, lz4_decompress, segment_codec_lz4, segment_codec_no_compression
from cassandra.protocol import ProtocolHandler

from ring.cql.frame import decode_header, header_bytes


def request_bytes(msg, stream: int, version: int, *, compressed: bool = False, segments: bool = False) -> bytes:
    frame = ProtocolHandler.encode_message(msg, stream, version, lz4_compress if compressed else None, False)
    if segments:
        out = io.BytesIO()
        (segment_codec_lz4 if compressed else segment_codec_no_compression).encode(out, frame)
        frame = out.getvalue()
    return frame


def unsegment(data: bytes, compressed: bool) -> bytes:
    codec = segment_codec_lz4 if compressed else segment_codec_no_compression
    buf, payload = io.BytesIO(data), b""
    while buf.tell() < len(data):
        header = codec.decode_header(buf)
        payload += codec.decode(buf, header).payload
    return payload


def decode_responses(data: bytes, *, compressed: bool = False, segments: bool = False, result_metadata=None):
    """[(header, driver message)] for every frame in `data`."""
    if segments:
        data = unsegment(data, compressed)
    out, pos = [], 0
    while pos < len(data):
        header = decode_header(data, pos)
        assert header is not None and header.is_response, data[pos:pos + 9]
        start = pos + header_bytes(header.version)
        body = data[start:start + header.length]
        assert len(body) == header.length
        msg = ProtocolHandler.decode_message(header.version, {}, header.stream, header.flags, header.opcode,
                                             body, lz4_decompress, result_metadata)
        out.append((header, msg))
        pos = start + header.length
    return out


def decode_one(data: bytes, **kw):
    (pair,) = decode_responses(data, **kw)
    return pair[1]
