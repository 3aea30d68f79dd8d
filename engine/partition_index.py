"""Format 1 (read only, engine/sstable_v1.py): the partition index (Index.db) and its in-memory summary (Summary.db).

Every partition has one index entry: its sort key and the position of its record in Data.db.

* sort key = `u64 (token + 2**63)` big-endian, then the partition key bytes. Plain bytes order of
  sort keys is exactly (signed token, unsigned key bytes) order, so every search is a C-level
  `bisect` over a list of bytes.
* position = `block_offset << 24 | offset_in_block` (u64): the Data.db offset of the block holding
  the record and the record's offset inside the block's uncompressed bytes
  (offset_in_block < block_size_bytes <= 2**24 - 1 always).

Index.db is `DTSI | u16 version` then segments of INDEX_INTERVAL (128) entries; a segment is
`u32 len | msgpack [list of sort keys, positions as len*8 bytes of u64] | u32 crc32(msgpack)`, so
a lookup decodes one segment in C. Summary.db holds the first sort key and the file offset of
every segment (every 128th entry), loaded in memory on open. Layouts: docs/format.md (SSTables).
"""
from __future__ import annotations

from dataclasses import dataclass

import msgpack

from engine.encoding import U16, U32, U64, check, crc32, frame_checksummed, unframe_checksummed
from engine.errors import CorruptionError

INDEX_MAGIC = b"DTSI"
SUMMARY_MAGIC = b"DTSS"
VERSION = 1
HEADER_SIZE = 6  # magic + u16 version, for Index.db and Summary.db alike
INDEX_INTERVAL = 128
TOKEN_BIAS = 2**63
IN_BLOCK_BITS = 24
IN_BLOCK_MASK = (1 << IN_BLOCK_BITS) - 1
MAX_BLOCK_SIZE = IN_BLOCK_MASK  # block_size_bytes must stay below 2**24

_u64_pack = U64.pack
_u32_unpack_from = U32.unpack_from
_packb = msgpack.packb
_unpackb = msgpack.unpackb


def sort_key(token: int, key: bytes) -> bytes:
    """Order-preserving bytes for (token, key)."""
    return _u64_pack(token + TOKEN_BIAS) + key


def encode_header(magic: bytes) -> bytes:
    return magic + U16.pack(VERSION)


def check_header(buf: bytes, magic: bytes, path: str) -> None:
    check(len(buf) >= HEADER_SIZE, path, 0, "file is shorter than its 6-byte header")
    check(buf[:4] == magic, path, 0, f"bad magic {bytes(buf[:4])!r}, expected {magic!r}")
    (version,) = U16.unpack_from(buf, 4)
    check(version == VERSION, path, 4, f"unsupported format version {version}")


# -- Index.db segments --------------------------------------------------------------------------

def encode_segment(sort_keys: list[bytes], positions: list[int]) -> bytes:
    assert 0 < len(sort_keys) == len(positions) <= INDEX_INTERVAL
    blob = b"".join(map(_u64_pack, positions))
    return frame_checksummed(_packb([sort_keys, blob], use_bin_type=True))


def decode_segment(buf: bytes, path: str, offset: int) -> tuple[tuple[bytes, ...], bytes]:
    """Decode one framed segment read from `offset`; `buf` must be exactly the segment.

    Returns (sort keys, positions blob); position j is `U64.unpack_from(blob, 8 * j)[0]`.
    (Hot path of every point read: plain ifs, no formatted messages unless corrupt.)"""
    n = len(buf)
    if n < 8 or _u32_unpack_from(buf, 0)[0] + 8 != n:
        raise CorruptionError(path, offset, f"index segment frame does not fit its {n}-byte slot")
    body = buf[4:n - 4]
    if _u32_unpack_from(buf, n - 4)[0] != crc32(body):
        raise CorruptionError(path, offset + n - 4, "index segment checksum mismatch")
    try:
        seg = _unpackb(body, use_list=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise CorruptionError(path, offset + 4, f"index segment is not valid msgpack: {exc}") from None
    if (type(seg) is not tuple or len(seg) != 2 or type(seg[0]) is not tuple
            or type(seg[1]) is not bytes or not 0 < len(seg[0]) <= INDEX_INTERVAL
            or len(seg[1]) != 8 * len(seg[0])):
        raise CorruptionError(path, offset + 4, "index segment does not hold [sort keys, positions]")
    return seg


# -- Summary.db ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Summary:
    """What the reader keeps in memory: sizes for truncation checks and the segment directory."""

    partition_count: int
    data_size: int  # bytes of Data.db, header included
    index_size: int  # bytes of Index.db, header included
    block_size: int  # the writer's block_size_bytes
    index_interval: int
    first_keys: list[bytes]  # first sort key of each Index.db segment
    segment_offsets: list[int]  # Index.db offset of each segment
    last_key: bytes  # sort key of the last partition (b"" when empty)

    def encode(self) -> bytes:
        body = _packb({
            "partition_count": self.partition_count, "data_size": self.data_size,
            "index_size": self.index_size, "block_size": self.block_size,
            "index_interval": self.index_interval, "first_keys": self.first_keys,
            "segment_offsets": self.segment_offsets, "last_key": self.last_key,
        }, use_bin_type=True)
        return encode_header(SUMMARY_MAGIC) + frame_checksummed(body)

    @classmethod
    def decode(cls, buf: bytes, path: str) -> "Summary":
        check_header(buf, SUMMARY_MAGIC, path)
        body, end = unframe_checksummed(buf, HEADER_SIZE, path)
        check(end == len(buf), path, end, "trailing bytes after the summary frame")
        try:
            m = _unpackb(body, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise CorruptionError(path, 10, f"summary is not valid msgpack: {exc}") from None
        names = {"partition_count", "data_size", "index_size", "block_size", "index_interval",
                 "first_keys", "segment_offsets", "last_key"}
        check(type(m) is dict and set(m) == names, path, 10, "summary map has the wrong fields")
        summary = cls(**m)
        summary.validate(path)
        return summary

    def validate(self, path: str) -> None:
        n, keys, offs = self.partition_count, self.first_keys, self.segment_offsets
        ok = all(type(getattr(self, f)) is int for f in
                 ("partition_count", "data_size", "index_size", "block_size", "index_interval"))
        ok = ok and self.index_interval == INDEX_INTERVAL and type(self.last_key) is bytes
        ok = ok and type(keys) is list and type(offs) is list and len(keys) == len(offs)
        ok = ok and len(keys) == -(-n // INDEX_INTERVAL)
        ok = ok and all(type(k) is bytes and len(k) >= 8 for k in keys)
        ok = ok and all(type(o) is int for o in offs)
        ok = ok and all(a < b for a, b in zip(keys, keys[1:]))
        ok = ok and all(a < b for a, b in zip(offs, offs[1:]))
        ok = ok and (not offs or (offs[0] == HEADER_SIZE and offs[-1] < self.index_size))
        ok = ok and (n == 0) == (self.last_key == b"") and (not keys or keys[-1] <= self.last_key)
        ok = ok and 0 < self.block_size <= MAX_BLOCK_SIZE
        check(ok, path, 10, "summary is inconsistent (counts, order or offsets)")
