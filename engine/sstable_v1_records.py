"""Format-1 Data.db records, read only (docs/format.md, SSTables, format 1): inside a framed block,
records `i64 token | uvarint key_len | key | uvarint payload_len | payload`, back to back.

parse_records checks every length against the block's end and raises CorruptionError(path,
file_offset, what) instead of returning a record that runs past it.
"""
from __future__ import annotations

from engine.encoding import I64, decode_uvarint
from engine.errors import CorruptionError

_i64_unpack_from = I64.unpack_from


def parse_records(raw: bytes, p: int, end: int, path: str, file_offset: int,
                  offsets: list[int] | None = None) -> list[tuple[int, bytes, bytes]]:
    """Records `i64 token | uvarint key_len | key | uvarint payload_len | payload` in raw[p:end].

    If `offsets` is given, the offset of each record relative to the first `p` is appended."""
    out = []
    append = out.append
    base = p
    while p < end:
        if offsets is not None:
            offsets.append(p - base)
        if p + 10 > end:
            raise CorruptionError(path, file_offset, "record header runs past the block")
        token = _i64_unpack_from(raw, p)[0]
        n = raw[p + 8]
        p += 9
        if n >= 0x80:
            n, p = decode_uvarint(raw, p - 1, path)
        key = raw[p:p + n]
        p += n
        if p >= end:
            raise CorruptionError(path, file_offset, "record key runs past the block")
        n = raw[p]
        p += 1
        if n >= 0x80:
            if p < end and raw[p] < 0x80:  # a two-byte length: payloads of 128 B to 16 KiB
                n = (n & 0x7F) | (raw[p] << 7)
                p += 1
            else:
                n, p = decode_uvarint(raw, p - 1, path)
        q = p + n
        if q > end:
            raise CorruptionError(path, file_offset, "record payload runs past the block")
        append((token, key, raw[p:q]))
        p = q
    return out
