"""Native protocol frames: the header, the opcodes, the flags, Cassandra's lz4 bodies, and a decoder.

Layout (v3, v4 and v5 frames; v1/v2 used an 8-byte header with a 1-byte stream, kept only to
answer such clients with an error they can read):

    byte 0      version   0x04 / 0x05 for a request, | 0x80 for a response
    byte 1      flags     0x01 compression, 0x02 tracing, 0x04 custom payload, 0x08 warning, 0x10 beta
    bytes 2-3   stream    signed 16-bit, chosen by the client; -1 for server-pushed EVENTs
    byte 4      opcode
    bytes 5-8   length    signed 32-bit body length, then the body

A compressed v4 body (flag 0x01) is Cassandra's lz4 framing: the uncompressed length as a 4-byte
big-endian integer, then one raw lz4 block. v5 never sets flag 0x01: its segments compress.
`FrameDecoder` cuts frames out of a byte buffer; a frame longer than `max_body_bytes` is
reported once and its body is skipped, so the stream stays in sync and the connection serves on.
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import lz4.block

from engine.encoding import I32, U32
from ring.cql.notation import ProtocolException


class Opcode(enum.IntEnum):
    """Frame opcodes. On the wire: never renumber."""

    ERROR = 0x00
    STARTUP = 0x01
    READY = 0x02
    AUTHENTICATE = 0x03
    OPTIONS = 0x05
    SUPPORTED = 0x06
    QUERY = 0x07
    RESULT = 0x08
    PREPARE = 0x09
    EXECUTE = 0x0A
    REGISTER = 0x0B
    EVENT = 0x0C
    BATCH = 0x0D
    AUTH_CHALLENGE = 0x0E
    AUTH_RESPONSE = 0x0F
    AUTH_SUCCESS = 0x10


FLAG_COMPRESSION = 0x01
FLAG_TRACING = 0x02
FLAG_CUSTOM_PAYLOAD = 0x04
FLAG_WARNING = 0x08
FLAG_USE_BETA = 0x10

RESPONSE_BIT = 0x80
HEADER_BYTES = 9
BODY_BYTES_MAX = 256 * 1024 * 1024   # the spec's hard limit; connections set a lower one
_HEADER = struct.Struct(">BBhBi")    # v3+: version, flags, stream, opcode, length


def header_bytes(version: int) -> int:
    """Header length for a protocol version: 8 for v1/v2 (1-byte stream), 9 from v3 on."""
    return 8 if version < 3 else 9


@dataclass(frozen=True, slots=True)
class FrameHeader:
    version: int       # without the response bit
    is_response: bool
    flags: int
    stream: int
    opcode: int
    length: int


def decode_header(buf: bytes | bytearray, pos: int = 0) -> FrameHeader | None:
    """The header at `pos`, or None when fewer than its bytes have arrived."""
    if len(buf) - pos < 1:
        return None
    raw_version = buf[pos]
    version = raw_version & 0x7F
    size = header_bytes(version)
    if len(buf) - pos < size:
        return None
    if size == 8:
        stream = int.from_bytes(buf[pos + 2:pos + 3], "big", signed=True)
        opcode = buf[pos + 3]
    else:
        stream = int.from_bytes(buf[pos + 2:pos + 4], "big", signed=True)
        opcode = buf[pos + 4]
    length = I32.unpack_from(buf, pos + size - 4)[0]
    return FrameHeader(version, bool(raw_version & RESPONSE_BIT), buf[pos + 1], stream, opcode, length)


def encode_frame(version: int, flags: int, stream: int, opcode: int, body: bytes,
                 *, response: bool = True) -> bytes:
    """One frame: header then body. v1/v2 get their 8-byte header (used only for errors)."""
    first = version | (RESPONSE_BIT if response else 0)
    if version < 3:
        head = bytes([first, flags]) + stream.to_bytes(1, "big", signed=True) + bytes([opcode])
        return head + I32.pack(len(body)) + body
    return _HEADER.pack(first, flags, stream, opcode, len(body)) + body


def compress_body(body: bytes) -> bytes:
    """Cassandra's v4 lz4 body: the uncompressed length (4 bytes, big-endian), then one lz4 block."""
    return U32.pack(len(body)) + lz4.block.compress(body, store_size=False)


def decompress_body(body: bytes, max_bytes: int) -> bytes:
    """Inverse of compress_body; refuses to inflate past `max_bytes` (a decompression bomb)."""
    if len(body) < 4:
        raise ProtocolException(f"compressed body of {len(body)} bytes has no length prefix")
    size = U32.unpack_from(body, 0)[0]
    if size > max_bytes:
        raise ProtocolException(
            f"compressed body claims {size} bytes uncompressed, above the limit of {max_bytes}")
    if size == 0:
        return b""
    try:
        out = lz4.block.decompress(body[4:], uncompressed_size=size)
    except lz4.block.LZ4BlockError as e:
        raise ProtocolException(f"lz4 body does not decompress: {e}")
    if len(out) != size:
        raise ProtocolException(f"lz4 body inflated to {len(out)} bytes, its header said {size}")
    return out


@dataclass(frozen=True, slots=True)
class Frame:
    header: FrameHeader
    body: bytes


@dataclass(frozen=True, slots=True)
class OversizedFrame:
    """A frame whose declared body exceeds the limit; its body is being skipped."""

    header: FrameHeader
    limit: int


class FrameDecoder:
    """Cuts whole frames out of received bytes. Pure: `feed` bytes, then `next()` until None.

    Invariant: `buffer` starts at a frame boundary (or inside a body being skipped, counted by
    `_skip`). A negative length or a response frame from a client cannot be resynchronized, so
    they raise a fatal ProtocolException.
    """

    def __init__(self, max_body_bytes: int):
        assert 0 < max_body_bytes <= BODY_BYTES_MAX
        self.max_body_bytes = max_body_bytes
        self.buffer = bytearray()
        self._skip = 0

    def feed(self, data: bytes) -> None:
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        self.buffer += data

    @property
    def skipping(self) -> bool:
        """True while the body of an oversized frame is still being dropped."""
        return self._skip > 0

    def next(self) -> Frame | OversizedFrame | None:
        header = decode_header(self.buffer)
        if header is None:
            return None
        if header.is_response:
            raise ProtocolException(
                f"received a response frame (version byte 0x{header.version | RESPONSE_BIT:02x}) "
                "from a client", fatal=True)
        if header.length < 0:
            raise ProtocolException(f"frame with negative body length {header.length}", fatal=True)
        size = header_bytes(header.version)
        if header.length > self.max_body_bytes:
            available = len(self.buffer) - size
            dropped = min(available, header.length)
            del self.buffer[:size + dropped]
            self._skip = header.length - dropped
            return OversizedFrame(header, self.max_body_bytes)
        end = size + header.length
        if len(self.buffer) < end:
            return None
        body = bytes(self.buffer[size:end])
        del self.buffer[:end]
        return Frame(header, body)
