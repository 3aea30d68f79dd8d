"""One commit-log segment's bytes: header, records, sync markers, and the pure reading plan.

A segment (format version 2) is `header (record* sync_marker)* record*`. Every sync writes a sync
marker (Cassandra's CommitLogSegment sync marker) closing the *section* of records written since
the previous marker, just before the fdatasync that makes them durable. So:

- bad bytes *before* a valid marker lie inside a section that a sync covered: corruption of data
  that may have been acknowledged (the caller raises, or skips the section when told to ignore
  replay errors);
- bad bytes *after* the last valid marker were never covered by a completed sync: a torn tail.

`plan_segment` is the pure decision: it reads a segment image and says which records are good,
which synced sections are damaged (and where reading resumes), and where a torn tail starts.
Version 1 segments (no markers, no previous id) are read with the version-1 rules: size 0 ends
the data, the first bad record starts the tail. Layout: docs/format.md (commit log).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.encoding import U16, U32, U32_U32, U64, check, crc32
from engine.errors import CorruptionError

MAGIC = b"DTCL"
VERSION = 2
VERSIONS = (1, 2)
HEADER_SIZES = {1: 4 + 2 + 8 + 4, 2: 4 + 2 + 8 + 8 + 4 + 4}
HEADER_SIZE = HEADER_SIZES[VERSION]   # magic, version, id, previous id and data end, CRC
ENTRY_OVERHEAD = 12                   # size, size CRC, tail CRC (Cassandra's ENTRY_OVERHEAD_SIZE)
MARKER_SIZE = 12                      # tag, section_start, marker CRC
MARKER_TAG = 0xFFFFFFFF               # in a record's size field: never a valid size
MAX_SEGMENT_BYTES = 0xFFFFFFFF        # offsets in markers are u32
_TAG_BYTES = U32.pack(MARKER_TAG)


def segment_name(segment_id: int, version: int = VERSION) -> str:
    return f"CommitLog-{version}-{segment_id}.log"


@dataclass(frozen=True)
class SegmentHeader:
    version: int
    segment_id: int
    previous_id: int          # 0: none (or a version-1 segment, which does not record it)
    previous_end: int         # where the previous segment's data ended (0: none / version 1)
    size: int                 # bytes of header


def encode_header(segment_id: int, previous_id: int = 0, previous_end: int = 0) -> bytes:
    head = (MAGIC + U16.pack(VERSION) + U64.pack(segment_id) + U64.pack(previous_id)
            + U32.pack(previous_end))
    return head + U32.pack(crc32(head))


def decode_header(buf: bytes | memoryview, path: str) -> SegmentHeader:
    """Check a segment header (either version). Raises CorruptionError naming the bad field."""
    check(len(buf) >= 6, path, 0, f"header truncated ({len(buf)} bytes)")
    check(bytes(buf[0:4]) == MAGIC, path, 0, f"bad magic {bytes(buf[0:4])!r}, expected {MAGIC!r}")
    (version,) = U16.unpack_from(buf, 4)
    check(version in VERSIONS, path, 4, f"unsupported version {version}, expected one of {VERSIONS}")
    size = HEADER_SIZES[version]
    check(len(buf) >= size, path, 0, f"header truncated ({len(buf)} of {size} bytes)")
    (stored,) = U32.unpack_from(buf, size - 4)
    check(stored == crc32(buf[0:size - 4]), path, size - 4, "header CRC mismatch")
    (segment_id,) = U64.unpack_from(buf, 6)
    previous = U64.unpack_from(buf, 14)[0] if version >= 2 else 0
    previous_end = U32.unpack_from(buf, 22)[0] if version >= 2 else 0
    return SegmentHeader(version, segment_id, previous, previous_end, size)


def encode_record(payload: bytes) -> bytes:
    """`u32 size | u32 CRC32(size) | payload | u32 CRC32(size ‖ payload)`."""
    head = U32.pack(len(payload))
    c = crc32(head)
    return head + U32.pack(c) + payload + U32.pack(crc32(payload, c))


def encode_marker(segment_id: int, offset: int, section_start: int) -> bytes:
    """`u32 0xFFFFFFFF | u32 section_start | u32 CRC32(segment_id u64 ‖ offset u32 ‖ both)`."""
    body = _TAG_BYTES + U32.pack(section_start)
    return body + U32.pack(crc32(body, crc32(U64.pack(segment_id) + U32.pack(offset))))


def marker_at(buf: bytes | memoryview, offset: int, segment_id: int) -> int | None:
    """The section_start of a valid sync marker at `offset`, else None."""
    if offset + MARKER_SIZE > len(buf) or bytes(buf[offset:offset + 4]) != _TAG_BYTES:
        return None
    start, stored = U32_U32.unpack_from(buf, offset + 4)
    want = crc32(buf[offset:offset + 8], crc32(U64.pack(segment_id) + U32.pack(offset)))
    return start if stored == want and start <= offset else None


def next_marker(buf: bytes, start: int, segment_id: int) -> int | None:
    """Offset of the first valid sync marker at or after `start`, else None."""
    i = buf.find(_TAG_BYTES, start)
    while i != -1:
        if marker_at(buf, i, segment_id) is not None:
            return i
        i = buf.find(_TAG_BYTES, i + 1)
    return None


@dataclass
class SegmentPlan:
    """What a segment holds. `damaged`: (error, resume offset) per damaged synced section;
    `tail`: the first bad record after the last valid marker (a torn tail if the segment is the
    last one), and `good_end` where the good data before the tail ends."""
    header: SegmentHeader
    records: list[tuple[int, int]] = field(default_factory=list)      # (offset, size)
    markers: list[tuple[int, int]] = field(default_factory=list)      # (offset, section_start)
    damaged: list[tuple[CorruptionError, int]] = field(default_factory=list)
    tail: CorruptionError | None = None
    good_end: int = 0
    zero_padded: bool = False


def _bad_record(mv: memoryview, pos: int, end: int, limit: int) -> tuple[str | None, int]:
    """(None, size) for a good record at pos, else (what is wrong, 0)."""
    if end - pos < 8:
        return f"record header truncated ({end - pos} bytes left)", 0
    size, size_crc = U32_U32.unpack_from(mv, pos)
    if size_crc != crc32(mv[pos:pos + 4]):
        return "record size CRC mismatch", 0
    if size == 0:
        return "record size 0", 0
    if size > limit:
        return f"record size {size} exceeds max_record_bytes={limit}", 0
    data_end = pos + 8 + size
    if data_end + 4 > end:
        return f"record of {size} bytes truncated", 0
    if U32.unpack_from(mv, data_end)[0] != crc32(mv[pos + 8:data_end], size_crc):
        return "record payload CRC mismatch", 0
    return None, size


def plan_segment(data: bytes, path: str, max_record_bytes: int | None = None) -> SegmentPlan:
    """Read a whole segment image; pure. The header must be valid (else CorruptionError)."""
    header = decode_header(data, path)
    plan = SegmentPlan(header)
    mv = memoryview(data)
    end = len(data)
    limit = end if max_record_bytes is None else max_record_bytes
    seg_id = header.segment_id
    pos = section_start = header.size
    while pos < end:
        if header.version == 1 and end - pos >= 4 and U32.unpack_from(mv, pos)[0] == 0:
            break                                             # v1: size 0 ends the data
        what, size = _bad_record(mv, pos, end, limit)
        if what is None:
            plan.records.append((pos, size))
            pos += ENTRY_OVERHEAD + size
            continue
        if header.version >= 2:
            start = marker_at(mv, pos, seg_id)
            if start == section_start:
                plan.markers.append((pos, start))
                pos = section_start = pos + MARKER_SIZE
                continue
            if start is not None:
                what = f"sync marker closes a section from {start}, expected {section_start}"
            elif data.count(0, pos, end) == end - pos:
                plan.zero_padded = True                       # zero fill: no data follows
                break
            resume = next_marker(data, pos + 1, seg_id)
            if resume is not None:                            # a later sync covered this byte
                plan.damaged.append((CorruptionError(path, pos, f"{what} inside a synced section"
                                                     f" (sync marker at {resume})"),
                                     resume + MARKER_SIZE))
                plan.markers.append((resume, marker_at(mv, resume, seg_id)))
                pos = section_start = resume + MARKER_SIZE
                continue
        plan.tail = CorruptionError(path, pos, what)
        break
    plan.good_end = pos
    return plan
