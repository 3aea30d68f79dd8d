"""The block index of a format-2/3 SSTable: Summary.db, held in memory while the SSTable is open.

For every Data.db block it holds a separator and the block's file offset, so a point read is a
C-level bisect over the separators and then ONE read of one block (no partition index file).

* sort key = `u64 (token + 2**63)` big-endian, then the partition key bytes: plain bytes order of
  sort keys is exactly (signed token, unsigned key bytes) order.
* separator of block 0 = its first sort key; separator of block i > 0 = the shortest prefix of
  block i's first sort key that is greater than block i-1's last sort key (LevelDB's shortest
  separator). So last(i-1) < separator(i) <= first(i), and the only block that can hold a sort
  key sk is `bisect_right(separators, sk) - 1`.
* block i spans Data.db bytes [offsets[i], offsets[i+1]) (the last one ends at data_size).

Summary.db = `DTSS | u16 version (2)` then `u32 len | msgpack map | u32 crc32(msgpack)` with the
fields of BlockIndex below. Invariants (checked on decode, CorruptionError(path, offset) if not):
separators strictly increasing, offsets more than 9 bytes apart, one of each per block, offsets[0] == 6 (the Data.db
header), offsets[-1] < data_size, no blocks exactly when no partitions.
Layouts: docs/format.md (SSTables).
"""
from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass, field

import msgpack

from engine.encoding import U16, U64, check, frame_checksummed, unframe_checksummed
from engine.errors import CorruptionError

SUMMARY_MAGIC = b"DTSS"
VERSION = 2
HEADER_SIZE = 6  # magic + u16 version (Data.db and Summary.db alike)
TOKEN_BIAS = 2**63
MAX_BLOCK_SIZE = (1 << 24) - 1
MIN_BLOCK_BYTES = 9  # a block's frame alone (engine/data_block.py): every block is larger
FIELDS = ("partition_count", "data_size", "block_size", "separators", "offsets", "last_key")

_u64_pack = U64.pack
_from_bytes = int.from_bytes


def sort_key(token: int, key: bytes) -> bytes:
    """Order-preserving bytes for (token, key)."""
    return _u64_pack(token + TOKEN_BIAS) + key


def shortest_separator(last: bytes, first: bytes) -> bytes:
    """The shortest prefix s of `first` with last < s (requires last < first)."""
    m = min(len(last), len(first))
    x = _from_bytes(last[:m], "big") ^ _from_bytes(first[:m], "big")
    shared = m - ((x.bit_length() + 7) >> 3)
    return first[:shared + 1]


def separator_tokens(separators: list[bytes]):
    """array('Q') of each separator's first 8 bytes as a big-endian u64, zero-padded when shorter.
    With Q = separator_tokens(seps) and a sort key sk = u64(u) + key: for every j with
    Q[j] != u, Q[j] <= u exactly when seps[j] <= sk (a separator of <= 8 bytes is <= sk iff its
    padded value is <= u; a longer one differs from sk within its first 8 bytes). So
    bisect_right(Q, u) - 1 is block_of(sk) unless that separator's Q equals u (then compare
    the whole sort key): a point read's bisect over 8-byte ints, without building sk."""
    return array("Q", [_from_bytes(s[:8].ljust(8, b"\0"), "big") for s in separators])


def encode_header(magic: bytes, version: int = VERSION) -> bytes:
    return magic + U16.pack(version)


def header_version(buf: bytes, magic: bytes, path: str) -> int:
    check(len(buf) >= HEADER_SIZE, path, 0, "file is shorter than its 6-byte header")
    check(buf[:4] == magic, path, 0, f"bad magic {bytes(buf[:4])!r}, expected {magic!r}")
    return U16.unpack_from(buf, 4)[0]


@dataclass(slots=True)
class BlockIndex:
    partition_count: int
    data_size: int  # bytes of Data.db, header included
    block_size: int  # the writer's block_size_bytes (a block may pass it by one entry)
    separators: list[bytes]
    offsets: list[int]  # Data.db offset of each block
    last_key: bytes  # sort key of the last partition (b"" when empty)
    bounds: list[int] = field(default_factory=list, repr=False)  # offsets + [data_size]

    def __post_init__(self):
        self.bounds = list(self.offsets) + [self.data_size]

    def block_of(self, sk: bytes) -> int:
        """The only block that may hold sk; -1 when sk sorts before every block."""
        return bisect_right(self.separators, sk) - 1

    def encode(self) -> bytes:
        body = msgpack.packb({f: getattr(self, f) for f in FIELDS}, use_bin_type=True)
        return encode_header(SUMMARY_MAGIC) + frame_checksummed(body)

    @classmethod
    def decode(cls, buf: bytes, path: str) -> "BlockIndex":
        version = header_version(buf, SUMMARY_MAGIC, path)
        check(version == VERSION, path, 4, f"unsupported Summary.db version {version}")
        body, end = unframe_checksummed(buf, HEADER_SIZE, path)
        check(end == len(buf), path, end, "trailing bytes after the summary frame")
        try:
            m = msgpack.unpackb(body, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise CorruptionError(path, HEADER_SIZE + 4, f"summary is not valid msgpack: {exc}") from None
        check(type(m) is dict and set(m) == set(FIELDS), path, HEADER_SIZE + 4,
              "summary map has the wrong fields")
        index = cls(**m)
        index.validate(path)
        return index

    def validate(self, path: str) -> None:
        seps, offs, n = self.separators, self.offsets, self.partition_count
        ok = all(type(getattr(self, f)) is int for f in ("partition_count", "data_size", "block_size"))
        ok = ok and type(seps) is list and type(offs) is list and len(seps) == len(offs)
        ok = ok and type(self.last_key) is bytes and 0 < self.block_size <= MAX_BLOCK_SIZE
        ok = ok and all(type(s) is bytes for s in seps) and all(type(o) is int for o in offs)
        ok = ok and all(a < b for a, b in zip(seps, seps[1:]))
        ok = ok and all(b - a > MIN_BLOCK_BYTES for a, b in zip(offs, offs[1:]))
        ok = ok and (not offs or (offs[0] == HEADER_SIZE and self.data_size - offs[-1] > MIN_BLOCK_BYTES))
        ok = ok and (n == 0) == (not seps) == (self.last_key == b"") and len(seps) <= n
        ok = ok and (not seps or (len(seps[0]) >= 8 and seps[-1] <= self.last_key))
        check(ok, path, HEADER_SIZE + 4, "summary is inconsistent (counts, order or offsets)")
