"""Opening a commit-log directory: list its segments, cut the torn tail, replay the records.

Thin drivers around the pure `engine.commit_log_segment.plan_segment`. The rules (which bad bytes
are a torn tail, which are corruption) are in docs/format.md (commit log, corruption rules):
- `repair_tail` runs at open, before a new segment exists: it deletes trailing segments with no
  header and truncates the last segment's bytes after its last valid sync marker from the first
  bad record on. It never removes a byte that a sync marker covers.
- `replay_segments` yields every good record, oldest first, and hands every corruption (damaged
  synced section, bad tail of an older segment, bad header, broken previous-segment chain) to
  `on_error`, which raises (stop) or records it and returns (ignore replay errors).
"""
from __future__ import annotations

import logging
import os
import re
from typing import Callable, Iterator

from engine.commit_log_segment import (ENTRY_OVERHEAD, HEADER_SIZES, SegmentHeader, decode_header,
                                       plan_segment)
from engine.encoding import check
from engine.errors import CorruptionError

log = logging.getLogger("engine.commit_log")
_NAME = re.compile(r"^CommitLog-(\d+)-(\d+)\.log$")


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_header(data: bytes, path: str, segment_id: int, version: int) -> SegmentHeader:
    header = decode_header(data, path)
    check(header.segment_id == segment_id, path, 6, "segment_id differs from file name")
    check(header.version == version, path, 4, f"version {header.version} differs from file name")
    return header


def list_segments(directory: str) -> tuple[dict[int, str], dict[int, int]]:
    """({segment_id: path} ascending, {segment_id: format version}); unknown versions refused."""
    found, versions = {}, {}
    for name in os.listdir(directory):
        m = _NAME.match(name)
        if not m:
            continue
        path = os.path.join(directory, name)
        if int(m.group(1)) not in HEADER_SIZES:
            raise CorruptionError(path, 0, f"unsupported commit log version {m.group(1)}; "
                                  f"this dynatable reads versions {sorted(HEADER_SIZES)}")
        found[int(m.group(2))] = path
        versions[int(m.group(2))] = int(m.group(1))
    return dict(sorted(found.items())), versions


def repair_tail(directory: str, segments: dict[int, str], versions: dict[int, int],
                max_record: int) -> tuple[int, int]:
    """Cut the torn tail (deletes entries of `segments`). Returns (bytes dropped, where the last
    segment's data now ends)."""
    changed = False
    dropped = last_end = 0
    while segments:
        seg_id, path = next(reversed(segments.items()))
        data = read_file(path)
        if len(data) >= HEADER_SIZES[versions[seg_id]] and data.count(0) != len(data):
            break
        log.warning("commit log: deleting torn segment %s (%d bytes, no header)", path, len(data))
        os.unlink(path)
        del segments[seg_id]
        dropped += len(data)
        changed = True
    if segments:
        seg_id, path = next(reversed(segments.items()))
        try:
            check_header(data, path, seg_id, versions[seg_id])
        except CorruptionError:
            return dropped, 0                            # a bad full header: replay raises
        plan = plan_segment(data, path, max_record)
        good = last_end = plan.good_end
        if good < len(data):                             # a torn tail, or zero fill
            if plan.tail is not None:
                log.warning("commit log: torn tail in %s at offset %d (%s) after the last sync "
                            "marker; truncating, dropping %d unsynced bytes",
                            path, good, plan.tail.what, len(data) - good)
            dropped += len(data) - good
            with open(path, "r+b") as f:
                f.truncate(good)
                f.flush()
                os.fsync(f.fileno())
    if changed:
        fsync_path(directory, directory=True)
    return dropped, last_end


def replay_segments(segments: dict[int, str], versions: dict[int, int], ids: list[int],
                    max_record: int, on_error: Callable[[int, CorruptionError], None]
                    ) -> Iterator[tuple[tuple[int, int], bytes]]:
    """((segment_id, end offset), payload) of every good record of the segments `ids`."""
    previous = None
    for seg_id in ids:
        path = segments.get(seg_id)
        if path is None:
            continue
        data = read_file(path)
        try:
            header = check_header(data, path, seg_id, versions[seg_id])
        except CorruptionError as e:
            on_error(seg_id, e)
            continue
        error = None if previous is None or header.version < 2 else _chain_error(path, header,
                                                                                  *previous)
        if error is not None:
            on_error(seg_id, error)
        plan = plan_segment(data, path, max_record)
        previous = (seg_id, plan.good_end)
        for e, _resume in plan.damaged:
            on_error(seg_id, e)
        if plan.tail is not None:                        # only the newest may be torn: repaired
            on_error(seg_id, CorruptionError(path, plan.tail.offset,
                                             plan.tail.what + " in a segment that is not the newest"))
        for offset, size in plan.records:
            end = offset + ENTRY_OVERHEAD + size
            yield (seg_id, end), data[offset + 8:end - 4]


def _chain_error(path: str, header: SegmentHeader, prev_id: int, prev_end: int):
    if header.previous_id != prev_id:
        return CorruptionError(path, 14, f"previous_segment_id is {header.previous_id} but the "
                               f"segment before this one is {prev_id}: a segment is missing")
    if header.previous_end != prev_end:
        return CorruptionError(path, 22, f"the previous segment {prev_id} ended at "
                               f"{header.previous_end} when this one was created, its data now "
                               f"ends at {prev_end}: it was truncated or damaged")
    return None
