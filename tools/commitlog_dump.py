"""`dynatable commitlog dump FILE`: print a commit log segment record by record, sync markers
included.

Field names are those of docs/format.md (commit log). Corruption is reported with the file and the
byte offset, never raised: a damaged synced section is reported and the dump goes on after its
sync marker; a bad record after the last sync marker (the tail) ends the dump.
"""
from __future__ import annotations

from typing import TextIO

from engine.commit_log_segment import HEADER_SIZES, plan_segment
from engine.encoding import U16, U32, U64
from engine.errors import CorruptionError

PAYLOAD_PREVIEW_BYTES = 32


def dump_commitlog(path: str, out: TextIO) -> None:
    """Print the header fields and one line per record and sync marker of the segment at `path`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"error file={path}: {e}", file=out)
        return
    print(f"file={path} file_bytes={len(data)}", file=out)
    _print_header(data, out)
    try:
        plan = plan_segment(data, path)
    except CorruptionError as e:
        _report("CORRUPTION", e, out)
        return
    lines = [(off, f"offset={off} size={size} crc=ok payload={_preview(data, off, size)}")
             for off, size in plan.records]
    lines += [(off, f"offset={off} sync_marker section_start={start} marker_crc=ok")
              for off, start in plan.markers]
    lines += [(e.offset, f"CORRUPTION file={e.path} offset={e.offset}: {e.what}")
              for e, _ in plan.damaged]
    for _, line in sorted(lines):
        print(line, file=out)
    end = plan.good_end
    summary = f"records={len(plan.records)} sync_markers={len(plan.markers)} end_offset={end}"
    if plan.tail is not None:
        print(f"{summary} (good bytes; the rest is not replayed)", file=out)
        _report("TORN TAIL", plan.tail, out, " (after the last sync marker: a torn tail if this "
                "is the newest segment, else corruption)")
        return
    reason = "end of file" if end == len(data) else f"zero filled, {len(data) - end} bytes"
    damaged = f" damaged_sections={len(plan.damaged)}" if plan.damaged else ""
    print(f"{summary} ({reason}){damaged}", file=out)


def _print_header(data: bytes, out: TextIO) -> None:
    if len(data) < 6:
        return
    (version,) = U16.unpack_from(data, 4)
    size = HEADER_SIZES.get(version, 0)
    if not size or len(data) < size:
        return
    (segment_id,) = U64.unpack_from(data, 6)
    previous = (f" previous_segment_id={U64.unpack_from(data, 14)[0]} "
                f"previous_segment_end={U32.unpack_from(data, 22)[0]}" if version >= 2 else "")
    (header_crc,) = U32.unpack_from(data, size - 4)
    shown = data[0:4].decode("ascii", "backslashreplace")
    print(f"header magic={shown} version={version} segment_id={segment_id}{previous} "
          f"header_crc=0x{header_crc:08x}", file=out)


def _preview(data: bytes, offset: int, size: int) -> str:
    payload = data[offset + 8:offset + 8 + min(size, PAYLOAD_PREVIEW_BYTES)]
    return payload.hex() + ("…" if size > PAYLOAD_PREVIEW_BYTES else "")


def _report(kind: str, e: CorruptionError, out: TextIO, note: str = "") -> None:
    print(f"{kind} file={e.path} offset={e.offset}: {e.what}{note}", file=out)
