"""SSTable statistics (the Statistics.db component): what compaction and reads decide from.

`SSTableStats` is a frozen value. On disk: `DTST | u16 version | u32 len | msgpack map | u32 crc`
where the map's keys are the field names below and the CRC covers the msgpack bytes
(docs/format.md (SSTables), "Statistics.db"). Decoding checks magic, version, lengths, the CRC and
every field's type, and raises CorruptionError; it never returns a half-read value.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import msgpack

from engine.files import fsync_directory, write_atomically  # noqa: F401 (fsync_directory re-exported)
from engine.encoding import U16, check, frame_checksummed, unframe_checksummed
from engine.errors import CorruptionError

MAGIC = b"DTST"
VERSION = 1
NO_DELETION_TIME = 2**63 - 1  # max_local_deletion_time when nothing expires or is deleted
HISTOGRAM_BUCKET_SECONDS = 60


@dataclass(frozen=True, slots=True)
class SSTableStats:
    min_timestamp: int  # microseconds, over every cell and deletion in the table
    max_timestamp: int
    min_token: int
    max_token: int
    partition_count: int
    cell_count: int
    tombstone_count: int
    max_local_deletion_time: int  # seconds; NO_DELETION_TIME if nothing expires or is deleted
    droppable_histogram: tuple[tuple[int, int], ...]  # (ldt rounded down to 60 s, count), sorted
    commit_log_intervals: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    level: int = 0
    compression: str | None = None
    created_ms: int = 0
    first_key: bytes = b""
    last_key: bytes = b""

    def droppable_tombstones(self, gc_before: int) -> int:
        """How many tombstones (and expiring cells) have local_deletion_time < gc_before.

        Buckets are rounded down to 60 s, so a bucket counts when its start is < gc_before (an
        estimate, as Cassandra's histogram is)."""
        return sum(count for ldt, count in self.droppable_histogram if ldt < gc_before)

    def with_level(self, level: int) -> "SSTableStats":
        return dataclasses.replace(self, level=level)


_INT_FIELDS = ("min_timestamp", "max_timestamp", "min_token", "max_token", "partition_count",
               "cell_count", "tombstone_count", "max_local_deletion_time", "level", "created_ms")
FIELD_NAMES = tuple(f.name for f in dataclasses.fields(SSTableStats))


def stats_to_map(stats: SSTableStats) -> dict:
    out = {name: getattr(stats, name) for name in FIELD_NAMES}
    out["droppable_histogram"] = [list(e) for e in stats.droppable_histogram]
    out["commit_log_intervals"] = [[list(a), list(b)] for a, b in stats.commit_log_intervals]
    return out


def encode_statistics(stats: SSTableStats) -> bytes:
    """The whole Statistics.db file."""
    body = msgpack.packb(stats_to_map(stats), use_bin_type=True)
    return MAGIC + U16.pack(VERSION) + frame_checksummed(body)


def _is_pair(value, depth: int) -> bool:
    """depth 0: an int; depth d: a 2-list whose items are depth d-1 values."""
    if depth == 0:
        return type(value) is int
    return type(value) is list and len(value) == 2 and all(_is_pair(x, depth - 1) for x in value)


def decode_statistics(buf: bytes, path: str) -> SSTableStats:
    check(len(buf) >= 6, path, 0, "statistics file is shorter than its header")
    check(buf[:4] == MAGIC, path, 0, f"bad magic {bytes(buf[:4])!r}, expected {MAGIC!r}")
    (version,) = U16.unpack_from(buf, 4)
    check(version == VERSION, path, 4, f"unsupported statistics version {version}")
    body, end = unframe_checksummed(buf, 6, path)
    check(end == len(buf), path, end, "trailing bytes after the statistics frame")
    try:
        m = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise CorruptionError(path, 10, f"statistics are not valid msgpack: {exc}") from None
    check(isinstance(m, dict) and set(m) == set(FIELD_NAMES), path, 10,
          "statistics map does not hold exactly the expected fields")
    ok = all(type(m[f]) is int for f in _INT_FIELDS)
    ok = ok and isinstance(m["first_key"], bytes) and isinstance(m["last_key"], bytes)
    ok = ok and (m["compression"] is None or isinstance(m["compression"], str))
    ok = ok and all(type(m[f]) is list for f in ("droppable_histogram", "commit_log_intervals"))
    ok = ok and all(_is_pair(e, 1) for e in m["droppable_histogram"])
    ok = ok and all(_is_pair(e, 2) for e in m["commit_log_intervals"])
    check(ok, path, 10, "a statistics field has the wrong type")
    m["droppable_histogram"] = tuple(tuple(e) for e in m["droppable_histogram"])
    m["commit_log_intervals"] = tuple((tuple(a), tuple(b)) for a, b in m["commit_log_intervals"])
    return SSTableStats(**m)


def read_statistics_file(path: str) -> SSTableStats:
    with open(path, "rb") as f:
        return decode_statistics(f.read(), path)


def write_statistics_file(path: str, stats: SSTableStats) -> None:
    """Replace Statistics.db atomically (write a temp file, fsync, rename, fsync the directory).

    Used to change the level of an existing sstable (Cassandra's mutateLevel)."""
    write_atomically(path, encode_statistics(stats))
