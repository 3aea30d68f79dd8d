"""Protocol v5 segments: the checksummed outer framing used after READY / AUTHENTICATE.

Layout of one segment (all integers little-endian, unlike the rest of the protocol):

    uncompressed: header 3 bytes = payload_length (17 bits) | self_contained << 17
    lz4:          header 5 bytes = payload_length (17 bits) | uncompressed_length << 17
                                   | self_contained << 34
    then          CRC24 of the header bytes (3 bytes; init 0x875060, polynomial 0x1974F0B)
    then          payload (at most 128 KiB - 1 bytes)
    then          CRC32 of the payload (4 bytes; zlib's CRC32 started from the CRC of fa 2d 55 ca)

A self-contained segment holds one or more whole frames. A frame longer than the payload limit
is cut into consecutive segments that are not self-contained. With lz4 on, a payload that does
not shrink is sent as is with uncompressed_length 0. A checksum mismatch is fatal: the decoder
cannot know where the next segment starts.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import lz4.block

from ring.cql.notation import ProtocolException

PAYLOAD_BYTES_MAX = 128 * 1024 - 1
CRC24_INIT = 0x875060
CRC24_POLY = 0x1974F0B
CRC32_SEED = zlib.crc32(b"\xfa\x2d\x55\xca")
_LENGTH_BITS = 17


def _crc24_table() -> tuple[int, ...]:
    """CRC24 of each byte value from a zero register: the spec's bit loop, run once per byte value."""
    table = []
    for byte in range(256):
        crc = byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= CRC24_POLY
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _crc24_table()


def crc24(value: int, length: int) -> int:
    """CRC24 of the `length` low bytes of `value`, least significant byte first (a byte a step)."""
    crc, table = CRC24_INIT, _CRC24_TABLE
    for _ in range(length):
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ value) & 0xFF]
        value >>= 8
    return crc


def crc32(payload: bytes) -> int:
    return zlib.crc32(payload, CRC32_SEED)


def header_bytes(compressed: bool) -> int:
    return 5 if compressed else 3


def _encode_one(payload: bytes, self_contained: bool, compressed: bool) -> bytes:
    if compressed:
        packed = lz4.block.compress(payload, store_size=False)
        if len(packed) < len(payload):
            uncompressed_length, body = len(payload), packed
        else:
            uncompressed_length, body = 0, payload
        header = len(body) | (uncompressed_length << _LENGTH_BITS) | (int(self_contained) << 34)
    else:
        body = payload
        header = len(body) | (int(self_contained) << _LENGTH_BITS)
    size = header_bytes(compressed)
    return (header.to_bytes(size, "little") + crc24(header, size).to_bytes(3, "little")
            + body + crc32(body).to_bytes(4, "little"))


def encode_segments(frames: bytes, compressed: bool) -> bytes:
    """Wrap whole frames in segments: one self-contained segment if they fit, else a split."""
    if len(frames) <= PAYLOAD_BYTES_MAX:
        return _encode_one(frames, True, compressed)
    return b"".join(_encode_one(frames[i:i + PAYLOAD_BYTES_MAX], False, compressed)
                    for i in range(0, len(frames), PAYLOAD_BYTES_MAX))


@dataclass(frozen=True, slots=True)
class Segment:
    payload: bytes
    self_contained: bool


class SegmentDecoder:
    """Cuts checksummed segments out of received bytes. Pure: `feed` returns whole segments.

    Invariant: `buffer` starts at a segment boundary. Offsets in errors count bytes since this
    decoder started, so a capture of the connection pinpoints the damaged segment.
    """

    def __init__(self, compressed: bool):
        self.compressed = compressed
        self.buffer = bytearray()
        self.offset = 0

    def feed(self, data: bytes) -> list[Segment]:
        self.buffer += data
        out = []
        while True:
            segment = self._next()
            if segment is None:
                return out
            out.append(segment)

    def _next(self) -> Segment | None:
        size = header_bytes(self.compressed)
        if len(self.buffer) < size + 3:
            return None
        header = int.from_bytes(self.buffer[:size], "little")
        expected = int.from_bytes(self.buffer[size:size + 3], "little")
        if crc24(header, size) != expected:
            raise ProtocolException(
                f"segment header CRC24 mismatch at stream offset {self.offset}: "
                f"computed {crc24(header, size):06x}, received {expected:06x}", fatal=True)
        length = header & PAYLOAD_BYTES_MAX
        header >>= _LENGTH_BITS
        uncompressed_length = 0
        if self.compressed:
            uncompressed_length = header & PAYLOAD_BYTES_MAX
            header >>= _LENGTH_BITS
        self_contained = bool(header & 1)
        end = size + 3 + length + 4
        if len(self.buffer) < end:
            return None
        body = bytes(self.buffer[size + 3:size + 3 + length])
        expected = int.from_bytes(self.buffer[end - 4:end], "little")
        if crc32(body) != expected:
            raise ProtocolException(
                f"segment payload CRC32 mismatch at stream offset {self.offset}: "
                f"computed {crc32(body):08x}, received {expected:08x}", fatal=True)
        if uncompressed_length:
            body = self._inflate(body, uncompressed_length)
        del self.buffer[:end]
        self.offset += end
        return Segment(body, self_contained)

    def _inflate(self, body: bytes, size: int) -> bytes:
        try:
            out = lz4.block.decompress(body, uncompressed_size=size)
        except lz4.block.LZ4BlockError as e:
            raise ProtocolException(
                f"segment at stream offset {self.offset} does not decompress: {e}", fatal=True)
        if len(out) != size:
            raise ProtocolException(
                f"segment at stream offset {self.offset} inflated to {len(out)} bytes, "
                f"header said {size}", fatal=True)
        return out
