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

import struct
from typing import NamedTuple

import lz4.block

from engine.encoding import crc32 as _crc32
from ring.cql.notation import ProtocolException

PAYLOAD_BYTES_MAX = 128 * 1024 - 1
CRC24_INIT = 0x875060
CRC24_POLY = 0x1974F0B
CRC32_SEED = _crc32(b"\xfa\x2d\x55\xca")
_LENGTH_BITS = 17
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from


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
    found = _CRC24_SEEN.get((value, length))
    if found is not None:
        return found
    crc, table, key = CRC24_INIT, _CRC24_TABLE, (value, length)
    for _ in range(length):
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ value) & 0xFF]
        value >>= 8
    if len(_CRC24_SEEN) >= _CRC24_SEEN_MAX:
        _CRC24_SEEN.clear()
    _CRC24_SEEN[key] = crc
    return crc


# Segment headers repeat (a client sends the same few payload lengths over and over): their
# CRC24s are remembered, at most _CRC24_SEEN_MAX of them (a pure function's cache, no state that
# changes an answer).
_CRC24_SEEN: dict[tuple[int, int], int] = {}
_CRC24_SEEN_MAX = 4096


def crc32(payload: bytes) -> int:
    return _crc32(payload, CRC32_SEED)


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
    """Wrap whole frames in segments: one self-contained segment if they fit, else a split (so
    `frames` longer than a payload must be one frame: a split segment holds a slice of one frame)."""
    if len(frames) <= PAYLOAD_BYTES_MAX:
        return _encode_one(frames, True, compressed)
    return b"".join(_encode_one(frames[i:i + PAYLOAD_BYTES_MAX], False, compressed)
                    for i in range(0, len(frames), PAYLOAD_BYTES_MAX))


def encode_frames(frames: list[bytes], compressed: bool) -> bytes:
    """Many whole frames in as few segments as fit: consecutive frames share a self-contained
    segment up to PAYLOAD_BYTES_MAX; a frame longer than that goes alone, split (encode_segments).
    The common case (a flush of small RESULT frames) is one segment: one header, two checksums
    and one compression for all of them instead of one each."""
    out, run, size = [], [], 0
    for frame in frames:
        if size + len(frame) > PAYLOAD_BYTES_MAX and run:
            out.append(_encode_one(b"".join(run), True, compressed))
            run, size = [], 0
        if len(frame) > PAYLOAD_BYTES_MAX:
            out.append(encode_segments(frame, compressed))
            continue
        run.append(frame)
        size += len(frame)
    if run:
        out.append(_encode_one(run[0] if len(run) == 1 else b"".join(run), True, compressed))
    return out[0] if len(out) == 1 else b"".join(out)


class Segment(NamedTuple):
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
        self.failure: ProtocolException | None = None   # a corrupt segment after good ones, raised next

    def feed(self, data: bytes) -> list[Segment]:
        """Every whole segment in the bytes received so far, read at offsets and consumed at once.
        A corrupt segment raises (fatal); after good segments of the same bytes, those are returned
        first and the failure is kept in `failure` (raised by the next feed) so the frames they
        hold are still served, as Cassandra serves the frames before a CRC mismatch."""
        if self.failure is not None:
            raise self.failure
        buf = self.buffer
        buf += data
        out: list[Segment] = []
        compressed, size, pos, n = self.compressed, header_bytes(self.compressed), 0, len(buf)
        try:
            while n - pos >= size + 3:
                if compressed:
                    header = _U32(buf, pos)[0] | (buf[pos + 4] << 32)
                else:
                    header = _U16(buf, pos)[0] | (buf[pos + 2] << 16)
                expected = _U16(buf, pos + size)[0] | (buf[pos + size + 2] << 16)
                if crc24(header, size) != expected:
                    raise ProtocolException(
                        f"segment header CRC24 mismatch at stream offset {self.offset + pos}: "
                        f"computed {crc24(header, size):06x}, received {expected:06x}", fatal=True)
                length = header & PAYLOAD_BYTES_MAX
                header >>= _LENGTH_BITS
                uncompressed_length = 0
                if compressed:
                    uncompressed_length = header & PAYLOAD_BYTES_MAX
                    header >>= _LENGTH_BITS
                end = pos + size + 3 + length + 4
                if n < end:
                    break
                body = bytes(buf[pos + size + 3:end - 4])
                expected = _U32(buf, end - 4)[0]
                if crc32(body) != expected:
                    raise ProtocolException(
                        f"segment payload CRC32 mismatch at stream offset {self.offset + pos}: "
                        f"computed {crc32(body):08x}, received {expected:08x}", fatal=True)
                if uncompressed_length:
                    body = self._inflate(body, uncompressed_length, self.offset + pos)
                out.append(Segment(body, bool(header & 1)))
                pos = end
        except ProtocolException as e:
            if not out:
                raise
            self.failure = e
        finally:
            if pos:
                del buf[:pos]
                self.offset += pos
        return out

    @staticmethod
    def _inflate(body: bytes, size: int, offset: int) -> bytes:
        try:
            out = lz4.block.decompress(body, uncompressed_size=size)
        except lz4.block.LZ4BlockError as e:
            raise ProtocolException(
                f"segment at stream offset {offset} does not decompress: {e}", fatal=True)
        if len(out) != size:
            raise ProtocolException(
                f"segment at stream offset {offset} inflated to {len(out)} bytes, "
                f"header said {size}", fatal=True)
        return out
