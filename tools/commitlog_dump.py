"""`dynatable commitlog dump FILE`: print a commit log segment record by record.

Field names are those of docs/format.md (commit log). Corruption is reported with the file and the
byte offset, never raised: the dump shows everything up to the first bad byte.
"""
from __future__ import annotations

from typing import TextIO

from engine.commit_log import ENTRY_OVERHEAD, HEADER_SIZE, decode_header, scan_records
from engine.encoding import U16, U32, U64
from engine.errors import CorruptionError

PAYLOAD_PREVIEW_BYTES = 32


def dump_commitlog(path: str, out: TextIO) -> None:
    """Print the header fields and one line per record of the segment at `path` to `out`."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        print(f"error file={path}: {e}", file=out)
        return
    print(f"file={path} file_bytes={len(data)}", file=out)
    if len(data) >= HEADER_SIZE:
        magic = data[0:4]
        (version,) = U16.unpack_from(data, 4)
        (segment_id,) = U64.unpack_from(data, 6)
        (header_crc,) = U32.unpack_from(data, 14)
        shown = magic.decode("ascii", "backslashreplace")
        print(f"header magic={shown} version={version} segment_id={segment_id} "
              f"header_crc=0x{header_crc:08x}", file=out)
    try:
        decode_header(data, path)
    except CorruptionError as e:
        _report(e, out)
        return
    records = 0
    end = HEADER_SIZE
    try:
        for offset, size in scan_records(data, path):
            payload = data[offset + 8:offset + 8 + size]
            more = "…" if size > PAYLOAD_PREVIEW_BYTES else ""
            print(f"offset={offset} size={size} crc=ok "
                  f"payload={payload[:PAYLOAD_PREVIEW_BYTES].hex()}{more}", file=out)
            records += 1
            end = offset + ENTRY_OVERHEAD + size
    except CorruptionError as e:
        print(f"records={records} good_bytes={e.offset}", file=out)
        _report(e, out)
        return
    trailing = len(data) - end
    reason = "end of file" if not trailing else f"size 0 end marker, {trailing} bytes after it"
    print(f"records={records} end_offset={end} ({reason})", file=out)


def _report(e: CorruptionError, out: TextIO) -> None:
    print(f"CORRUPTION file={e.path} offset={e.offset}: {e.what}", file=out)

