"""`dynatable commitlog dump FILE`: print a commit log segment record by record, sync markers
included, each record's mutations decoded (table, partition key, rows and cells by name, from the
schema.db of the store the segment sits in: <store>/commitlog/<segment>; else table ids, hex keys
and column ids, with a note). A record that is not a mutation list is shown as a hex preview.

Field names are those of docs/format.md (commit log). Corruption is reported with the file and the
byte offset, never raised: a damaged synced section is reported and the dump goes on after its
sync marker; a bad record after the last sync marker (the tail) ends the dump. `dump_commitlog`
returns 1 if it reported corruption or could not read the file, else 0 (a torn tail, normal in
the newest segment after a crash, is reported but is not an error); a file that does not start
with the segment magic raises ValueError (the CLI prints one line and exits 1).
"""
from __future__ import annotations

from typing import TextIO

import msgpack

from engine.commit_log_segment import HEADER_SIZES, MAGIC, plan_segment
from engine.encoding import U16, U32, U64
from engine.errors import CorruptionError
from tools.partition_text import key_text, partition_text, store_root_of_segment, tables_near

PAYLOAD_PREVIEW_BYTES = 32


def dump_commitlog(path: str, out: TextIO, limit: int | None = None) -> int:
    """Print the header fields and one line per record (then its mutations) and sync marker of
    the segment at `path`; with `limit`, only the first `limit` records and markers."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"error file={path}: {e}", file=out)
        return 1
    if data[:len(MAGIC)] != MAGIC:
        raise ValueError(f"{path} is not a commit log segment (it starts with {data[:4]!r}, not "
                         f"{MAGIC!r}); pass a file of <store>/commitlog/")
    tables, note = tables_near(store_root_of_segment(path))
    print(f"file={path} file_bytes={len(data)}", file=out)
    _print_header(data, out)
    try:
        plan = plan_segment(data, path)
    except CorruptionError as e:
        _report("CORRUPTION", e, out)
        return 1
    lines = [(off, _record_lines(data, off, size, tables)) for off, size in plan.records]
    if note is not None and any(" mutations=" in text for _, text in lines):
        print(note, file=out)
    lines += [(off, f"offset={off} sync_marker section_start={start} marker_crc=ok")
              for off, start in plan.markers]
    lines.sort()
    if limit is not None and len(lines) > limit:
        lines = lines[:limit] + [(lines[limit][0], f"(--limit {limit}: {len(lines) - limit} more records "
                                                   "and sync markers not shown)")]
    lines += [(e.offset, f"CORRUPTION file={e.path} offset={e.offset}: {e.what}") for e, _ in plan.damaged]
    for _, line in sorted(lines, key=lambda item: item[0]):
        print(line, file=out)
    end = plan.good_end
    summary = f"records={len(plan.records)} sync_markers={len(plan.markers)} end_offset={end}"
    if plan.tail is not None:
        print(f"{summary} (good bytes; the rest is not replayed)", file=out)
        _report("TORN TAIL", plan.tail, out, " (after the last sync marker: a torn tail if this "
                "is the newest segment, else corruption)")
        return 1 if plan.damaged else 0
    reason = "end of file" if end == len(data) else f"zero filled, {len(data) - end} bytes"
    damaged = f" damaged_sections={len(plan.damaged)}" if plan.damaged else ""
    print(f"{summary} ({reason}){damaged}", file=out)
    return 1 if plan.damaged else 0


def _record_lines(data: bytes, offset: int, size: int, tables: dict) -> str:
    """The record's line, then one indented line per mutation it holds (if it is a mutation list:
    [[table id, partition key, partition], ...], docs/format.md (commit log))."""
    head = f"offset={offset} size={size} crc=ok"
    payload = data[offset + 8:offset + 8 + size]
    mutations = _mutations(payload)
    if mutations is None:
        return f"{head} payload={_preview(data, offset, size)}"
    out = [f"{head} mutations={len(mutations)}"]
    for table_id, key, partition in mutations:
        table = tables.get(table_id)
        name = table.qualified_name if table is not None else f"table_id={table_id}"
        try:
            text = partition_text(table, partition)
        except Exception as exc:  # noqa: BLE001 - a partition that does not decode: show its bytes
            text = f"payload={partition.hex()} (undecodable: {exc})"
        out.append(f"  {name} key={key_text(table, key)} {text}")
    return "\n".join(out)


def _mutations(payload: bytes) -> list | None:
    try:
        items = msgpack.unpackb(payload)
    except Exception:  # noqa: BLE001 - not msgpack: a record of something else
        return None
    if not isinstance(items, list) or not items or not all(
            isinstance(m, list) and len(m) == 3 and isinstance(m[0], str) and isinstance(m[1], bytes)
            and isinstance(m[2], bytes) for m in items):
        return None
    return items


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
