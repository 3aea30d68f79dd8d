"""Byte-level building blocks: fixed-width integers, varints, checksums, corruption checks.

Every integer on disk and on the wire is big-endian (as in Cassandra). Checksums are CRC32
(zlib's, the same polynomial as java.util.zip.CRC32). `crc32` computes it with ISA-L (the `isal`
package: the same values, 4-7x faster from 64 bytes up, bench/README.md session 14) and falls back
to zlib's where isal has no wheel; the two agree on every input and start value. This module is
the only user of `struct`; the layouts it serves are documented in docs/format.md.
"""
from __future__ import annotations

import struct
import zlib

try:
    from isal.isal_zlib import crc32 as _isal_crc32
except ImportError:  # pragma: no cover - a platform without an isal wheel
    _isal_crc32 = None

from engine.errors import CorruptionError

U8 = struct.Struct(">B")
U16 = struct.Struct(">H")
U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
I32 = struct.Struct(">i")
I64 = struct.Struct(">q")
F32 = struct.Struct(">f")
F64 = struct.Struct(">d")
U32_U32 = struct.Struct(">II")

crc32 = _isal_crc32 or zlib.crc32  # crc32(data, start=0), zlib's signature and values


def encode_uvarint(value: int) -> bytes:
    """LEB128: 7 bits per byte, least significant group first, high bit = more follows."""
    assert value >= 0, value
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_uvarint(buf: bytes | memoryview, offset: int, path: str = "<buffer>") -> tuple[int, int]:
    """Decode a LEB128 varint at `offset`; returns (value, next offset). At most 10 bytes."""
    result = 0
    shift = 0
    pos = offset
    end = len(buf)
    while True:
        if pos >= end:
            raise CorruptionError(path, offset, "varint runs past the end of the buffer")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CorruptionError(path, offset, "varint longer than 10 bytes")


def one_width(items, joined: bytes) -> int:
    """The one length of every item (0 when there are none), or -1 when their lengths differ;
    `joined` is b"".join(items). One C pass (max) besides the join the caller needed anyway."""
    if not items:
        return 0
    w = len(items[0])
    return w if len(joined) == w * len(items) and max(map(len, items)) == w else -1


def check(condition: bool, path: str, offset: int, what: str) -> None:
    """Raise CorruptionError(path, offset, what) unless `condition` holds."""
    if not condition:
        raise CorruptionError(path, offset, what)


def frame_checksummed(payload: bytes) -> bytes:
    """`u32 length | payload | u32 crc32(payload)`: the framing used by small metadata files."""
    return U32.pack(len(payload)) + payload + U32.pack(crc32(payload))


def unframe_checksummed(buf: bytes, offset: int, path: str) -> tuple[bytes, int]:
    """Inverse of frame_checksummed; checks the length and the CRC. Returns (payload, next)."""
    check(offset + 4 <= len(buf), path, offset, "frame length is truncated")
    (length,) = U32.unpack_from(buf, offset)
    start = offset + 4
    end = start + length
    check(end + 4 <= len(buf), path, offset, f"frame of {length} bytes is truncated")
    payload = bytes(buf[start:end])
    (stored,) = U32.unpack_from(buf, end)
    check(stored == crc32(payload), path, end, "frame checksum mismatch")
    return payload, end + 4

U64_U32 = struct.Struct(">QI")
I64_I64 = struct.Struct(">qq")
U32_U64 = struct.Struct(">IQ")
